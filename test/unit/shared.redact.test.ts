import { describe, expect, it } from 'vitest';
import { redactUrl, scrubSecrets, secretsOf } from '../../src/shared/redact.js';

describe('redactUrl', () => {
  it.each([
    ['user:password@', 'postgres://weft:s3cret-pw@db:5432/weft', 'postgres://weft:***@db:5432/weft'],
    ['?password=', 'postgres://weft@db/weft?sslmode=require&password=s3cret-pw', 'postgres://weft@db/weft?sslmode=require&password=***'],
    ['sslpassword', 'postgres://db/weft?sslpassword=s3cret-pw', 'postgres://db/weft?sslpassword=***'],
    ['a raw @ in the password', 'postgres://weft:s3c@ret-pw@db:5432/weft', 'postgres://weft:***@db:5432/weft'],
    ['a percent-encoded @', 'postgres://weft:s3c%40ret-pw@db/weft', 'postgres://weft:***@db/weft'],
    ['a raw # before the @', 'postgres://weft:s3c#ret-pw@db/weft', 'postgres://***@db/weft'],
    ['a raw / before the @', 'postgres://weft:s3c/ret-pw@db/weft', 'postgres://***@db/weft'],
    ['the broker', 'amqp://guest:s3cret-pw@127.0.0.1:5672', 'amqp://guest:***@127.0.0.1:5672'],
    ['no password', 'postgres://weft@db:5432/weft', 'postgres://weft@db:5432/weft'],
  ])('hides the password given as %s', (_form, url, shown) => {
    expect(redactUrl(url)).toBe(shown);
    expect(redactUrl(url)).not.toMatch(/s3c|ret-pw/);
  });

  it('scrubs every form of the password from a message that quotes it', () => {
    const url = 'postgres://weft:s3c@ret-pw@db/weft?password=other-secret';
    const message = 'getaddrinfo ENOTFOUND s3c@ret-pw (other-secret, s3c%40ret-pw)';
    expect(scrubSecrets(message, secretsOf(url))).toBe('getaddrinfo ENOTFOUND *** (***, ***)');
    expect(secretsOf(undefined)).toEqual([]);
  });
});
