/**
 * OpenTelemetry traces of a task (issue 10): a mixed-language task
 * (TypeScript, Python and Ruby steps) run by an orchestrator and one worker
 * per runtime, on each backend, exported over OTLP/HTTP JSON to a receiver in
 * this test. One trace per task, whose id is the task's UUID; every step's
 * spans present; every parent link resolves inside the trace; the language
 * of each run; the bridge phases of the Python and Ruby runs; and the
 * `traceparent` each handler got is its own run span.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startEngine, type Backend } from '../support/engine.js';
import { freePort } from '../support/ports.js';
import { AMQP_URL } from '../support/urls.js';
import type { TaskView } from '../../src/store/tasks.js';
import { spawnWeft, type WeftProcess } from '../support/weft-process.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { loadTemplateDir } from '../../src/core/template/load.js';
import type { TemplateDefinition } from '../../src/core/template/types.js';
import { handlers } from './fixtures/trace-handlers/typescript/trace.js';
import { createRunner } from '../../src/worker/runners.js';
import type { StepRunner } from '../../src/worker/runner.js';
import { silentLogger } from '../../src/shared/logger.js';
import { packageRoot } from '../../src/shared/paths.js';
import { flushTracing, startTracing, stopTracing, tracing } from '../../src/telemetry/index.js';
import { startSdk } from '../../src/telemetry/sdk.js';
import type { Logger } from '../../src/shared/logger.js';
import { parseTraceparent, taskRootSpanId, taskTraceId } from '../../src/telemetry/ids.js';

const FIXTURES = join(packageRoot(), 'test/integration/fixtures/trace-handlers');
const LANGUAGE: Record<string, string> = { start: 'typescript', py: 'python', rb: 'ruby', join: 'typescript' };
type Results = Record<string, { traceparent: string | null; language: string }>;

/**
 * The task's spans form one tree: one trace id (the task's), the root with
 * the id every process derives, no dangling parent, and for every step its
 * dispatch, its attempt span with claim, run (language, bridge phases, the
 * handler's own span) and finish, and the handler got its run's context.
 */
function checkTrace(spans: ReceivedSpan[], taskId: string, backend: Backend, results: Results): ReceivedSpan[] {
  const traceId = taskTraceId(taskId);
  const mine = spans.filter((s) => s.attributes['weft.task.id'] === taskId || s.traceId === traceId);
  // One trace: every span of this task, whatever process or runtime made it, carries the task's trace id.
  expect(new Set(mine.map((s) => s.traceId))).toEqual(new Set([traceId]));
  const byId = new Map(mine.map((s) => [s.spanId, s]));
  expect(byId.size).toBe(mine.length); // no span id twice
  if (process.env.DUMP_TREE) {
    const show = (s: ReceivedSpan, d: number): void => {
      console.log(
        `${'  '.repeat(d)}${s.name} [${s.service}] ${Number(s.endNs - s.startNs) / 1e3}us ${s.attributes['weft.language'] ?? ''} ${s.attributes['weft.bridge.ms'] ?? ''}`,
      );
      for (const c of mine.filter((x) => x.parentSpanId === s.spanId)) show(c, d + 1);
    };
    for (const r of mine.filter((x) => !x.parentSpanId)) show(r, 0);
  }

  // The root: weft.task, with the id every process derives from the task id, and no parent.
  const root = mine.filter((s) => s.name === 'weft.task');
  expect(root).toHaveLength(1);
  expect(root[0]!.spanId).toBe(taskRootSpanId(taskId));
  expect(root[0]!.parentSpanId).toBeUndefined();
  expect(root[0]!.attributes['weft.task.state']).toBe('complete');
  // Every other span's parent is a span of this trace: the tree has no dangling link.
  for (const s of mine) {
    if (s === root[0]) continue;
    expect(s.parentSpanId, `${s.name} has a parent`).toBeDefined();
    expect(byId.has(s.parentSpanId!), `the parent of ${s.name} is in the trace`).toBe(true);
  }
  const parentOf = (s: ReceivedSpan) => byId.get(s.parentSpanId!)!;
  const childrenOf = (s: ReceivedSpan) => mine.filter((c) => c.parentSpanId === s.spanId);

  const create = mine.filter((s) => s.name === 'weft.task.create');
  expect(create).toHaveLength(1);
  expect(parentOf(create[0]!).name).toBe('weft.task');
  expect(create[0]!.attributes['weft.template']).toBe('mixed');

  for (const name of Object.keys(LANGUAGE)) {
    const step = mine.filter((s) => s.name === `weft.step ${name}`);
    expect(step, `one weft.step span for ${name}`).toHaveLength(1);
    const span = step[0]!;
    expect(span.attributes['weft.step.name']).toBe(name);
    expect(span.attributes['weft.language']).toBe(LANGUAGE[name]);
    expect(span.attributes['weft.step.state']).toBe('complete');
    expect(span.attributes['weft.step.attempt']).toBe(1);

    // Its dispatch: a RabbitMQ message carries the publish span's context in its headers and parents the step;
    // the PostgreSQL queue has no message, so the step hangs under the task and the dispatch is its sibling.
    const dispatch = mine.filter((s) => s.name === 'weft.step.dispatch' && s.attributes['weft.step.id'] === span.attributes['weft.step.id']);
    expect(dispatch, `one dispatch of ${name}`).toHaveLength(1);
    expect(dispatch[0]!.attributes['messaging.system']).toBe(backend === 'pg' ? 'postgresql' : 'rabbitmq');
    if (backend === 'rabbitmq') expect(parentOf(span)).toBe(dispatch[0]);
    else expect(parentOf(span)).toBe(root[0]);

    const children = childrenOf(span);
    expect(children.map((c) => c.name).sort()).toEqual(['weft.step.claim', 'weft.step.finish', 'weft.step.run']);
    const run = children.find((c) => c.name === 'weft.step.run')!;
    expect(run.attributes['weft.language']).toBe(LANGUAGE[name]);
    expect(run.attributes['weft.runtime']).toBe(name === 'py' ? 'python' : name === 'rb' ? 'ruby' : 'native');
    expect(children.find((c) => c.name === 'weft.step.finish')!.attributes['weft.step.state']).toBe('complete');
    expect(span.startNs <= run.startNs && run.endNs <= span.endNs).toBe(true);

    // The handler got the run span's context, to continue the trace from.
    const given = parseTraceparent(results[name]!.traceparent);
    expect(given, `${name}'s handler got a traceparent`).toBeDefined();
    expect(given!.traceId).toBe(traceId);
    expect(given!.spanId).toBe(run.spanId);
    expect(results[name]!.language).toBe(LANGUAGE[name]);

    const under = childrenOf(run).sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
    if (name === 'py' || name === 'rb') {
      // Python and Ruby run through the bridge: its phases are child spans of the run, in order.
      expect(under.map((p) => p.name)).toEqual(['weft.bridge.serialise', 'weft.bridge.queue_wait', 'weft.bridge.handler', 'weft.bridge.return']);
      for (const p of under) expect(p.attributes['weft.language']).toBe(LANGUAGE[name]);
    } else {
      // TypeScript handlers run in the worker: the handler's own span sits under the run.
      expect(under.map((p) => p.name)).toEqual(['handler work']);
      expect(under[0]!.attributes['weft.step.name']).toBe(name);
    }
  }
  return mine;
}

describe('OpenTelemetry: one trace per task, across runtimes and backends', () => {
  let tdb: TestDatabase;
  let receiver: OtlpReceiver;
  const runners: StepRunner[] = [];
  let templates: TemplateDefinition[];

  beforeAll(async () => {
    templates = await loadTemplateDir(join(FIXTURES, 'templates'));
    receiver = await startOtlpReceiver();
    expect(await startTracing({ service: 'weft-test', force: true, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } })).toBe(true);
    tdb = await createTestDatabase();
    for (const runtime of ['python', 'ruby']) runners.push(await createRunner(runtime, join(FIXTURES, runtime), silentLogger()));
  });
  afterAll(async () => {
    await stopTracing();
    for (const r of runners) await r.close();
    await tdb?.drop();
    await receiver?.close();
  });

  /** Run one task of t_trace on an engine of this backend (an orchestrator, a native worker, the Python and Ruby workers). */
  async function runTask(backend: Backend, name: string): Promise<TaskView> {
    const engine = await startEngine({ backend, url: tdb.url, templates, handlers: handlers as never, namespaces: ['t_trace'] });
    try {
      for (const runner of runners) await engine.addWorker({ runner });
      return await engine.run('t_trace', name, {}, 30_000);
    } finally {
      await engine.stop();
    }
  }

  it.each(['pg', 'rabbitmq'] as Backend[])('%s: the spans of a TypeScript + Python + Ruby task form one tree', async (backend) => {
    const view = await runTask(backend, 'mixed');
    expect(view.state).toBe('complete');
    await flushTracing();
    expect(receiver.rejected).toEqual([]);
    checkTrace(receiver.spans, view.id, backend, Object.fromEntries(view.steps.map((s) => [s.name, s.result as Results[string]])));
  });

  it('a step claimed by the finish of its parent, in the same worker, has no dispatch and a finish claim', async () => {
    const view = await runTask('pg', 'chain');
    expect(view.state).toBe('complete');
    await flushTracing();
    const mine = receiver.spans.filter((s) => s.traceId === taskTraceId(view.id));
    const byId = new Map(mine.map((s) => [s.spanId, s]));
    for (const s of mine) if (s.name !== 'weft.task') expect(byId.has(s.parentSpanId!), `the parent of ${s.name} is in the trace`).toBe(true);
    const claimOf = (step: string) => {
      const span = mine.find((s) => s.name === `weft.step ${step}`)!;
      return mine.find((s) => s.name === 'weft.step.claim' && s.parentSpanId === span.spanId)!.attributes['weft.claim'];
    };
    expect([claimOf('first'), claimOf('second')]).toEqual(['claim', 'finish']);
    expect(mine.filter((s) => s.name === 'weft.step.dispatch').map((s) => s.attributes['weft.step.name'])).toEqual(['first']);
  });

  it("a retried step has a span per attempt, the failed one an error with its exception; a failed task's root is an error", async () => {
    const view = await runTask('pg', 'flaky');
    expect(view.state).toBe('error');
    await flushTracing();
    const traceId = taskTraceId(view.id);
    const mine = receiver.spans.filter((s) => s.traceId === traceId);
    const byId = new Map(mine.map((s) => [s.spanId, s]));
    for (const s of mine) if (s.name !== 'weft.task') expect(byId.has(s.parentSpanId!), `the parent of ${s.name} is in the trace`).toBe(true);
    const root = mine.find((s) => s.name === 'weft.task')!;
    expect(root.attributes['weft.task.state']).toBe('error');
    expect(root.statusCode).toBe(2); // ERROR

    const shaky = mine
      .filter((s) => s.name === 'weft.step shaky')
      .sort((a, b) => Number(a.attributes['weft.step.attempt']) - Number(b.attributes['weft.step.attempt']));
    expect(shaky.map((s) => [s.attributes['weft.step.attempt'], s.attributes['weft.step.state'], s.statusCode])).toEqual([
      [1, 'waiting_retry', 2],
      [2, 'complete', 0],
    ]);
    const failedRun = mine.find((s) => s.name === 'weft.step.run' && s.parentSpanId === shaky[0]!.spanId)!;
    expect(failedRun.statusCode).toBe(2);
    expect(failedRun.events).toEqual(['exception']);
    // Each attempt was dispatched: the first with the task, the retry when its backoff ran out.
    expect(mine.filter((s) => s.name === 'weft.step.dispatch' && s.attributes['weft.step.name'] === 'shaky')).toHaveLength(2);

    const doomed = mine.filter((s) => s.name === 'weft.step doomed');
    expect(doomed.map((s) => [s.attributes['weft.language'], s.attributes['weft.step.state'], s.statusCode])).toEqual([['python', 'error', 2]]);
  });

  it('tracing off: handlers get no traceparent and nothing is exported', async () => {
    await flushTracing();
    await stopTracing();
    expect(tracing.enabled).toBe(false);
    const before = receiver.spans.length;
    const view = await runTask('pg', 'mixed');
    expect(view.state).toBe('complete');
    for (const s of view.steps) expect((s.result as { traceparent: unknown }).traceparent ?? null).toBeNull();
    expect(receiver.spans.length).toBe(before);
  });
});

describe('OpenTelemetry across real processes: weft orchestrator and one weft worker per runtime', () => {
  let tdb: TestDatabase;
  let receiver: OtlpReceiver;
  const processes: WeftProcess[] = [];
  const prefix = `weft_test_otel_${process.pid}`;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    tdb = await createTestDatabase();
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await tdb?.drop();
    await receiver?.close();
    // The RabbitMQ run's queues and exchange, named by its prefix.
    const conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createChannel();
    for (const runtime of ['native', 'python', 'ruby']) {
      for (const q of [`${prefix}.step.t_trace.${runtime}`, `${prefix}.step.t_trace.${runtime}.dlq`]) await ch.deleteQueue(q).catch(() => undefined);
    }
    await ch.deleteExchange(`${prefix}.dlx`).catch(() => undefined);
    await conn.close();
  });

  it.each(['pg', 'rabbitmq'] as Backend[])(
    '%s: the API answers where the trace is, and the processes export one tree, sending what they buffered when stopped',
    async (backend) => {
      const port = await freePort();
      const env = {
        WEFT_DATABASE_URL: tdb.url,
        WEFT_MESSAGING: backend,
        WEFT_AMQP_URL: AMQP_URL,
        WEFT_QUEUE_PREFIX: prefix,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        WEFT_POLL_INTERVAL_MS: '200',
      };
      processes.push(spawnWeft(['orchestrator', '--port', String(port), '--templates', join(FIXTURES, 'templates')], env));
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      while (
        !(await fetch(`${base}/health`).then(
          (r) => r.ok,
          () => false,
        ))
      ) {
        if (Date.now() > deadline) throw new Error(`the orchestrator did not come up:\n${processes[0]!.output()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      for (const [runtime, dir] of [
        ['native', 'typescript'],
        ['python', 'python'],
        ['ruby', 'ruby'],
      ]) {
        processes.push(spawnWeft(['worker', '--runtime', runtime!, '--handlers', join(FIXTURES, dir!), '--namespaces', 't_trace'], env));
      }

      const created = await fetch(`${base}/v1/tasks`, {
        method: 'POST',
        // The caller's own trace: the API's span links back to it.
        headers: { 'content-type': 'application/json', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
        body: JSON.stringify({ namespace: 't_trace', name: 'mixed', context: {} }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      expect(created.headers.get('traceresponse')).toBe(`00-${taskTraceId(id)}-${taskRootSpanId(id)}-01`);
      const waited = (await (await fetch(`${base}/v1/tasks/${id}/wait?timeout_ms=45000`)).json()) as { state: string };
      expect(waited.state, processes.map((p) => p.output()).join('\n')).toBe('complete');
      const view = (await (await fetch(`${base}/v1/tasks/${id}`)).json()) as { steps: Array<{ name: string; result: Results[string] }> };

      // SIGTERM: each process exports what its batch processor still holds before it exits.
      await Promise.all(processes.splice(0).map((p) => p.stop('SIGTERM')));
      const mine = checkTrace(receiver.spans, id, backend, Object.fromEntries(view.steps.map((s) => [s.name, s.result])));
      expect(mine.find((s) => s.name === 'weft.task.create')!.service).toBe('weft-orchestrator');
      const api = mine.filter((s) => s.name === 'POST /v1/tasks');
      expect(api).toHaveLength(1);
      expect(api[0]!.kind).toBe(2); // SERVER
      expect(api[0]!.service).toBe('weft-orchestrator');
      expect(api[0]!.parentSpanId).toBe(taskRootSpanId(id));
      expect(api[0]!.links).toEqual(['4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7']);
      const runtimeOf: Record<string, string> = { typescript: 'native', python: 'python', ruby: 'ruby' };
      for (const s of mine.filter((x) => x.name.startsWith('weft.step '))) {
        expect(s.service).toBe(`weft-worker-${runtimeOf[String(s.attributes['weft.language'])]}`);
      }
    },
  );
});

describe('OpenTelemetry off', () => {
  it('a process that imports the engine with tracing off loads the API only, not the SDK or the exporter', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(FIXTURES, 'sdk-loaded.mts')], { cwd: packageRoot(), encoding: 'utf8' });
    const { off, on } = JSON.parse(out) as { off: string[]; on: string[] };
    expect(off).toEqual(['@opentelemetry/api']);
    expect(on).toEqual(expect.arrayContaining(['@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-http']));
  });
});

describe('OpenTelemetry: an endpoint that takes no spans', () => {
  it('is reported, naming the endpoint and the setting to fix, instead of losing spans without a word', async () => {
    const port = await freePort(); // nothing listens there
    const warnings: Array<[Record<string, unknown>, string]> = [];
    const log = { warn: (o: Record<string, unknown>, m: string) => warnings.push([o, m]), info: () => undefined } as unknown as Logger;
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_TIMEOUT: '500' };
    const sdk = startSdk({ service: 'weft-test', env, forcedIds: {}, log });
    try {
      sdk.tracer.startSpan('lost').end();
      await sdk.flush().catch(() => undefined); // it rejects; stopTracing and flushTracing swallow that
    } finally {
      await sdk.shutdown().catch(() => undefined);
    }
    expect(warnings).toHaveLength(1);
    const [fields, message] = warnings[0]!;
    expect(message).toBe(
      'spans could not be sent to the OTLP endpoint and are lost; check OTEL_EXPORTER_OTLP_ENDPOINT (a collector listening for OTLP/HTTP there) or unset it',
    );
    expect(fields.endpoint).toBe(`http://127.0.0.1:${port}/v1/traces`);
    expect(fields.lost_spans).toBe(1);
    expect(String(fields.err)).toContain('ECONNREFUSED');
  });
});
