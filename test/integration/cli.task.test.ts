/**
 * `weft task list|show|wait`, `weft templates push`, `weft run` and `weft
 * token` as real processes, on the database directly and through a real
 * orchestrator process (WEFT_ORCHESTRATOR_URL): the same output both ways,
 * `--json` shapes (errors included), the one-line usage hint, and tokens
 * managed through the API with an admin token.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { spawnWeft, weftCommand as weft, type WeftProcess } from '../support/weft-process.js';
import { freePort } from '../support/ports.js';
import { packageRoot } from '../../src/shared/paths.js';

const FIXTURES = join(packageRoot(), 'test/integration/fixtures/cli-task');
const TEMPLATES = join(FIXTURES, 'templates');
const HANDLERS = join(FIXTURES, 'handlers');

/** Output with what differs between two runs of the same task (ids, times) masked. */
function masked(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'ID')
    .replace(/\d+(\.\d+)? ms/g, 'N ms')
    .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'TIME')
    .replace(/ +/g, ' ');
}

async function waitHealthy(url: string, proc: WeftProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/health`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`orchestrator at ${url} did not become healthy:\n${proc.output()}`);
}

// Every case runs the CLI a few times, a few seconds each on a busy machine.
describe('weft task, templates push and token, on the database and through the API', { timeout: 300_000 }, () => {
  let tdb: TestDatabase;
  let db: Record<string, string>;
  let api: Record<string, string>;
  let url: string;
  let orchestrator: WeftProcess;
  let worker: WeftProcess;
  let failedId: string;
  let okId: string;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = { WEFT_DATABASE_URL: tdb.url };
    url = `http://127.0.0.1:${await freePort()}`;
    api = { ...db, WEFT_ORCHESTRATOR_URL: url };
    orchestrator = spawnWeft(['orchestrator', '--port', url.split(':').at(-1)!, '--templates', TEMPLATES], db);
    worker = spawnWeft(['worker', '--runtime', 'native', '--handlers', join(HANDLERS, 'typescript'), '--namespaces', 't_cli_task'], db);
    await waitHealthy(url, orchestrator);
    const failed = await weft(['run', 't_cli_task/fails', '--wait'], api);
    expect(failed.code).toBe(1);
    failedId = /^task ([0-9a-f-]{36})/m.exec(failed.stdout)![1]!;
    const ok = await weft(['run', 't_cli_task/ok', '--wait'], api);
    expect(ok.code).toBe(0);
    okId = /^task ([0-9a-f-]{36})/m.exec(ok.stdout)![1]!;
  });
  afterAll(async () => {
    await worker?.stop();
    await orchestrator?.stop();
    await tdb?.drop();
  });

  it('weft run prints the same lines in-process and through an orchestrator, each step with its own duration', async () => {
    const local = await weft(['run', 't_cli_task/ok', '--wait', '--templates', TEMPLATES, '--handlers', HANDLERS], db);
    const remote = await weft(['run', 't_cli_task/ok', '--wait'], api);
    expect(local.code).toBe(0);
    expect(remote.code).toBe(0);
    expect(masked(remote.stdout)).toBe(masked(local.stdout));
    expect(masked(remote.stdout)).toBe(
      'task ID t_cli_task/ok@1.0.0\n ✓ fetch {"lines":[2,3]} N ms\n ✓ total 5 N ms\ncomplete in N ms (server side); result: total = 5\n',
    );
  });

  it('task show: the same steps, error and backtrace on the database and through the API', async () => {
    const local = await weft(['task', 'show', failedId], db);
    const remote = await weft(['task', 'show', failedId], api);
    expect(local.stderr).toBe('');
    expect(remote).toEqual(local);
    const lines = local.stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^task ${failedId}  t_cli_task/fails@1\\.0\\.0  error  [\\d.]+ ms$`));
    expect(lines[1]).toMatch(/^ {2}✓ fetch +\{"lines":\[2,3\]\} +[\d.]+ ms$/);
    // The step's line has the start of the message; the whole of it is below.
    expect(lines[2]).toMatch(/^ {2}✗ explode +PermanentError: sku A-42 is not in th\.\.\. +[\d.]+ ms$/);
    expect(lines[3]).toBe('step explode (error, attempt 1/3, permanent error):');
    expect(lines[4]).toMatch(/^ {4}PermanentError: sku A-42 is not in the catalogue {2}\(.*permanent\)$/);
    // The backtrace, a frame a line, naming the handler's file.
    expect(lines[5]).toMatch(/^ {6}cli_task\.explode \(.*cli-task\/handlers\/typescript\/tasks\.ts:\d+:\d+\)$/);

    const step = await weft(['task', 'show', failedId, '--step', 'explode'], api);
    expect(step).toEqual(await weft(['task', 'show', failedId, '--step', 'explode'], db));
    expect(step.stdout).toContain(`step explode of task ${failedId}  t_cli_task/fails@1.0.0\n  state        error\n  handler      cli_task.explode (native)\n`);
    expect(step.stdout).toMatch(/ {2}error\n {4}PermanentError: sku A-42 is not in the catalogue/);

    const json = JSON.parse((await weft(['task', 'show', failedId, '--step', 'explode', '--json'], api)).stdout);
    expect(json).toMatchObject({ name: 'explode', state: 'error', error: { class: 'PermanentError', permanent: true } });
    const task = JSON.parse((await weft(['task', 'show', okId, '--json'], db)).stdout);
    expect(task).toMatchObject({ id: okId, state: 'complete', ended: true, steps: [{ name: 'fetch' }, { name: 'total', result: 5 }] });
  });

  it('task list: filters, the same lines both ways, and the API page as JSON', async () => {
    const args = ['task', 'list', '--state', 'error', '--template', 't_cli_task/fails'];
    const local = await weft(args, db);
    const remote = await weft(args, api);
    expect(remote).toEqual(local);
    expect(local.stdout.split('\n')[1]).toMatch(new RegExp(`^${failedId}  t_cli_task/fails@1\\.0\\.0 +error +1/2 +[\\d.]+ ms  \\d{4}-`));
    expect(local.stdout).toContain('  explode: permanent error PermanentError: sku A-42 is not in the catalogue\n');
    expect(local.stdout).toMatch(/counts: error 1\n$/);
    const page = JSON.parse((await weft([...args, '--json'], api)).stdout);
    expect(Object.keys(page)).toEqual(['tasks', 'next_cursor', 'counts']);
    expect(page.tasks.map((t: { id: string }) => t.id)).toEqual([failedId]);
    expect(JSON.parse((await weft([...args, '--json'], db)).stdout)).toEqual(page);
    const first = await weft(['task', 'list', '--limit', '1'], api);
    expect(first.stdout).toMatch(/; more with --cursor [0-9a-f-]{36}\n$/);
  });

  it('task wait: exit 0 for a complete task, 1 for a failed one, and the task as JSON', async () => {
    const ok = await weft(['task', 'wait', okId], api);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^task ${okId}  t_cli_task/ok@1\\.0\\.0  complete`));
    const failed = await weft(['task', 'wait', failedId, '--json'], db);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ id: failedId, state: 'error', ended: true });
  });

  it('names a bad or unknown task the same way both ways, as text or as JSON', async () => {
    const unknown = '01a21e54-5be0-76be-97b1-9441a6c8e351';
    for (const env of [db, api]) {
      expect(await weft(['task', 'show', unknown], env)).toEqual({ code: 1, stdout: '', stderr: `weft: no task ${unknown}\n` });
      const bad = await weft(['task', 'wait', '42', '--json'], env);
      expect(bad.code).toBe(1);
      expect(JSON.parse(bad.stdout)).toEqual({
        error: { code: 'invalid_input', path: 'id', message: 'task id "42" is not a UUID; `weft run` prints it, and `weft task list` lists them' },
      });
      const state = await weft(['task', 'list', '--state', 'lost'], env);
      expect(state.stderr).toBe('weft: state must be one of pending, running, complete, error, cancelled, got "lost"\n');
    }
    const remote404 = JSON.parse((await weft(['task', 'show', unknown, '--json'], api)).stdout);
    expect(remote404).toEqual({ error: { code: 'not_found', message: `no task ${unknown}`, status: 404 } });
    const noStep = await weft(['task', 'show', failedId, '--step', 'nope'], api);
    expect(noStep.stderr).toBe(`weft: task ${failedId} has no step "nope"; its steps: fetch, explode\n`);
  });

  it('answers an unknown option with one line and a hint, not the help', async () => {
    const r = await weft(['task', 'list', '--bogus'], db);
    expect(r).toEqual({ code: 1, stdout: '', stderr: "error: unknown option '--bogus'\nhint: `weft task list --help` lists its arguments and options\n" });
    const json = await weft(['cancel', '--json'], db);
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'usage', message: "missing required argument 'task-id'", usage_code: 'commander.missingArgument' },
    });
    const help = await weft(['worker', '--help'], db);
    expect(help.stdout).toMatch(/--handlers <dir> +\(required\) directory of handler modules/);
  });

  it('templates push registers through the API: created, unchanged, and a changed version refused (409)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-push-'));
    try {
      await cp(TEMPLATES, dir, { recursive: true });
      await writeFile(join(dir, 'extra.yaml'), 'namespace: t_cli_push\nname: one\nversion: 1.0.0\nsteps:\n  - { name: a, handler: cli_task.fetch }\n');
      const pushed = await weft(['templates', 'push', dir], api);
      expect(pushed.stderr).toBe('');
      expect(pushed.code).toBe(0);
      expect(masked(pushed.stdout)).toBe(
        `t_cli_push/one@1.0.0 created\nt_cli_task/ok@1.0.0 unchanged\nt_cli_task/fails@1.0.0 unchanged\n1 created, 2 unchanged, 0 failed, at ${url}\n`,
      );
      await writeFile(join(dir, 'extra.yaml'), (await readFile(join(dir, 'extra.yaml'), 'utf8')).replace('cli_task.fetch', 'cli_task.total'));
      const changed = await weft(['templates', 'push', dir, '--json'], api);
      expect(changed.code).toBe(1);
      const doc = JSON.parse(changed.stdout);
      expect(doc).toMatchObject({ ok: false, where: url });
      expect(doc.templates[0]).toMatchObject({ namespace: 't_cli_push', error: { code: 'conflict' } });
      expect(doc.templates[1]).toMatchObject({ namespace: 't_cli_task', outcome: 'unchanged' });
      // A broken file: nothing is sent, every problem named.
      await writeFile(join(dir, 'broken.yaml'), 'namespace: t_cli_push\nname: two\nsteps: []\n');
      const broken = await weft(['templates', 'push', dir], api);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toMatch(/^weft: template .*broken\.yaml/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // Last: once a token exists the API needs one.
  it('token commands say where they wrote, and work through the API with an admin token', { timeout: 400_000 }, async () => {
    const created = await weft(['token', 'create', '--name', 'cli-admin', '--scope', 'admin'], db);
    expect(created.code).toBe(0);
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^weft_/);
    expect(created.stderr).toBe(
      `weft: token cli-admin (admin) created in the database postgres://postgres@127.0.0.1:5432/${tdb.name}; keep it now, it cannot be shown again\n`,
    );

    const denied = await weft(['token', 'list', '--json'], api);
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.stdout).error).toMatchObject({ code: 'token_required', status: 401 });

    const admin = { ...api, WEFT_API_TOKEN: secret };
    const reader = await weft(['token', 'create', '--name', 'cli-reader', '--scope', 'read', '--json'], admin);
    const readerDoc = JSON.parse(reader.stdout);
    expect(readerDoc).toMatchObject({ name: 'cli-reader', scopes: ['read'], where: `the orchestrator at ${url}`, token: expect.stringMatching(/^weft_/) });
    const list = await weft(['token', 'list'], admin);
    expect(list.stdout.split('\n')[0]).toBe(`tokens in the orchestrator at ${url}:`);
    expect(list.stdout).toMatch(/\ncli-admin +admin +weft_.*live\ncli-reader +read +weft_.*live\n$/);

    const asReader = { ...api, WEFT_API_TOKEN: readerDoc.token };
    expect((await weft(['task', 'show', okId], asReader)).code).toBe(0);
    const push = await weft(['templates', 'push', TEMPLATES, '--json'], asReader);
    expect(JSON.parse(push.stdout).error).toMatchObject({ code: 'forbidden', status: 403 });
    expect((await weft(['templates', 'push', TEMPLATES], admin)).code).toBe(0);

    expect(await weft(['token', 'revoke', 'cli-reader'], admin)).toMatchObject({ code: 0, stdout: `revoked cli-reader in the orchestrator at ${url}\n` });
    const revoked = await weft(['task', 'show', okId, '--json'], asReader);
    expect(JSON.parse(revoked.stdout).error).toMatchObject({ code: 'token_invalid', status: 401 });
    const dbList = JSON.parse((await weft(['token', 'list', '--all', '--json'], db)).stdout);
    expect(dbList.where).toBe(`the database postgres://postgres@127.0.0.1:5432/${tdb.name}`);
    expect(dbList.tokens.map((t: { name: string; revoked_at: string | null }) => [t.name, t.revoked_at !== null])).toEqual([
      ['cli-admin', false],
      ['cli-reader', true],
    ]);
  });
});
