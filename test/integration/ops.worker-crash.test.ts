/**
 * A Python handler that segfaults its worker on every attempt, under weft's
 * cluster supervisor (issue 15): the supervisor sees each exit (SIGSEGV) and
 * records it on the worker's row, the lease sweep writes each loss with its
 * cause into the step's error history, and the WorkerLostError that ends the
 * step says the losses were crashes, not outside kills. Real processes: an
 * orchestrator and a Python worker started, restarted and stopped by the
 * supervisor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { freePort, until } from '../support/tcp-proxy.js';
import { ClusterSupervisor } from '../../src/ops/cluster.js';
import { getTaskView } from '../../src/store/tasks.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';

const FIXTURES = join(packageRoot(), 'test/integration/fixtures/segv');

describe('a handler that crashes its worker, under the cluster supervisor', () => {
  let tdb: TestDatabase;
  let supervisor: ClusterSupervisor | undefined;
  const stateDir = mkdtempSync(join(tmpdir(), 'weft-crash-'));

  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => {
    await supervisor?.stop('stopped', 5_000);
    await tdb?.drop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('fails the step with a WorkerLostError that counts the crashes (SIGSEGV), each loss recorded with its cause', async () => {
    supervisor = new ClusterSupervisor(
      {
        orchestrators: 1,
        workers: { python: 1 },
        backend: 'pg',
        // Ports base, base+220 (the Python worker): a free one, well away from the others' ranges.
        basePort: await freePort(),
        stateDir,
        concurrency: 1,
        healthTimeoutMs: 60_000,
        templates: join(FIXTURES, 'templates'),
        handlers: { python: join(FIXTURES, 'python') },
        env: { ...process.env, WEFT_DATABASE_URL: tdb.url, WEFT_LEASE_MS: '1500', WEFT_STEP_MAX_LOSSES: '2', WEFT_POLL_INTERVAL_MS: '200' },
      },
      silentLogger(),
    );
    await supervisor.start();
    const res = await fetch(`${supervisor.orchestratorUrls()[0]}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 't_segv', name: 'crash' }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    await until(
      'the task to fail',
      async () => (await getTaskView(tdb.db, id))?.state,
      (s) => s === 'error',
      90_000,
    );

    const step = (await getTaskView(tdb.db, id))!.steps[0]!;
    expect(step).toMatchObject({ state: 'error', losses: 2, failures: 0 });
    const error = step.error as { class: string; message: string };
    expect(error.class).toBe('WorkerLostError');
    expect(error.message).toMatch(/^step crash lost its worker 2 times: 2 crashed \(SIGSEGV\); it is not run again/);
    const losses = step.errors as Array<Record<string, unknown>>;
    expect(losses).toEqual([
      expect.objectContaining({ attempt: 1, kind: 'worker_lost', cause: 'crashed', signal: 'SIGSEGV', seen_by: 'the weft cluster supervisor' }),
      expect.objectContaining({ attempt: 2, kind: 'worker_lost', cause: 'crashed', signal: 'SIGSEGV', seen_by: 'the weft cluster supervisor' }),
    ]);
    expect(losses[0]!.message).toMatch(/^attempt 1 lost its worker worker-python-\S+: it crashed \(SIGSEGV\), as the weft cluster supervisor saw$/);
    // The audit trail names the cause too.
    const { rows } = await tdb.db.query<{ cause: string }>(
      `SELECT metadata->>'cause' AS cause FROM weft.step_transitions WHERE step_id = $1 AND metadata->>'reason' = 'worker lost' ORDER BY seq`,
      [step.id],
    );
    expect(rows.map((r) => r.cause)).toEqual(['crashed', 'crashed']);
  }, 150_000);
});
