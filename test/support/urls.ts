/** The PostgreSQL server integration tests use (trust auth on 127.0.0.1 here and in CI). */
export const BASE_URL = process.env.WEFT_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** One id per `vitest` run (set by global-setup.ts, inherited by the test processes), so concurrent runs do not meet. */
export function runId(): string {
  return process.env.WEFT_TEST_RUN ?? 'main';
}
export function templateDb(): string {
  return `weft_test_template_${runId()}`;
}
export const AMQP_URL = process.env.WEFT_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export function databaseUrl(name: string): string {
  const u = new URL(BASE_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

export function adminUrl(): string {
  return BASE_URL;
}
