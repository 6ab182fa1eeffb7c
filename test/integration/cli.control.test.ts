/**
 * The CLI's control commands as real processes: `weft run --wait` giving up
 * (its own exit code, distinct from a failed task), `weft cancel` and
 * `weft retry` on the database directly, and their errors.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { getTaskView } from '../../src/store/tasks.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';
import { EXIT_STILL_RUNNING } from '../../src/cli/run.js';
import { weftCommand as weft } from '../support/weft-process.js';

const FIXTURES = join(packageRoot(), 'test/integration/fixtures/control');

describe('weft run, cancel and retry from the command line', () => {
  let tdb: TestDatabase;
  let db: Database;
  let env: Record<string, string>;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = await openDatabase({ url: tdb.url, log: silentLogger(), max: 2 });
    env = { WEFT_DATABASE_URL: tdb.url };
  });
  afterAll(async () => {
    await db?.close();
    await tdb?.drop();
  });

  it('gives up waiting with exit code 3, then cancels and retries the task', async () => {
    const run = await weft(
      ['run', 't_cli_control/slow', '--wait', '--timeout', '1500', '--templates', join(FIXTURES, 'templates'), '--handlers', join(FIXTURES, 'handlers')],
      env,
    );
    expect(run.code).toBe(EXIT_STILL_RUNNING);
    // Its in-process worker could not finish the step before exiting, and says so.
    expect(run.stderr).toContain('drain timed out; those steps run again once their lease expires');
    const id0 = /^task ([0-9a-f-]{36})/m.exec(run.stdout)![1]!;
    expect(run.stdout).toContain(`still running after 1500 ms; it goes on wherever workers serve it (weft worker), or stop it with: weft cancel ${id0}`);
    const id = /^task ([0-9a-f-]{36})/m.exec(run.stdout)![1]!;

    const cancel = await weft(['cancel', id, '--reason', 'stuck on a slow mirror'], env);
    expect(cancel.stderr).toBe('');
    expect(cancel).toMatchObject({ code: 0, stdout: `task ${id} cancelled (1 running step interrupted)\n` });
    const cancelled = (await getTaskView(db, id))!;
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.error).toMatchObject({ reason: 'cancelled', by: expect.stringMatching(/^cli:/), message: 'stuck on a slow mirror' });
    expect(cancelled.steps[0]!.state).toBe('cancelled');

    const again = await weft(['cancel', id], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`weft: task ${id} has already ended (cancelled); only a pending or running task can be cancelled\n`);

    const retry = await weft(['retry', id], env);
    expect(retry.stderr).toBe('');
    expect(retry).toMatchObject({ code: 0, stdout: `task ${id} running again (1 step ready now)\n` });
    const retried = (await getTaskView(db, id))!;
    expect(retried.state).toBe('running');
    expect(retried.steps[0]!.state).toBe('enqueued');
    await weft(['cancel', id], env); // leave nothing running
  });

  it('names a bad or unknown task id', async () => {
    const bad = await weft(['cancel', '42'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('weft: task id "42" is not a UUID');
    const unknown = await weft(['retry', '01a21e54-5be0-76be-97b1-9441a6c8e351'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('weft: no task 01a21e54-5be0-76be-97b1-9441a6c8e351\n');
  });
});
