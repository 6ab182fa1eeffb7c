import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { getTemplate, listTemplates, registerTemplate } from '../../src/store/templates.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { ConflictError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';

const def = (version: string, handler = 'linear.square') =>
  parseTemplate(`namespace: reg\nname: one\nversion: ${version}\nsteps:\n  - { name: a, handler: ${handler} }\n`, 'one.yaml');

describe('template registration', () => {
  let tdb: TestDatabase;
  const pools: Database[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    for (let i = 0; i < 8; i++) pools.push(await openDatabase({ url: tdb.url, log: silentLogger(), max: 2 }));
  });
  afterAll(async () => {
    for (const p of pools) await p.close();
    await tdb?.drop();
  });

  it('eight processes registering the same new template at once: one creates it, the rest see it unchanged', async () => {
    for (let round = 0; round < 5; round++) {
      const d = def(`1.0.${round}`);
      const outcomes = await Promise.all(pools.map((p) => registerTemplate(p, d)));
      expect(outcomes.filter((o) => o === 'created')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'unchanged')).toHaveLength(7);
    }
  });

  it('a changed definition under a registered version is a ConflictError telling the author to bump the version', async () => {
    await registerTemplate(tdb.db, def('2.0.0'));
    await expect(registerTemplate(tdb.db, def('2.0.0', 'other.key'))).rejects.toThrow(ConflictError);
    await expect(registerTemplate(tdb.db, def('2.0.0', 'other.key'))).rejects.toThrow(
      'template reg/one@2.0.0 is already registered with a different definition; a version is immutable once registered: bump `version` (e.g. 1.0.1) to change it',
    );
  });

  it('without a version, the highest semver wins (numerically, 1.0.10 > 1.0.9)', async () => {
    await registerTemplate(tdb.db, def('1.0.9'));
    await registerTemplate(tdb.db, def('1.0.10'));
    expect((await getTemplate(tdb.db, 'reg', 'one'))!.version).toBe('2.0.0');
    expect((await getTemplate(tdb.db, 'reg', 'one', '1.0.10'))!.version).toBe('1.0.10');
    expect((await listTemplates(tdb.db)).filter((t) => t.namespace === 'reg').map((t) => t.version)).toContain('1.0.9');
  });
});
