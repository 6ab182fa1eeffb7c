import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { Logger } from '../shared/logger.js';
import { tracingWanted } from '../shared/config.js';
import type { MessagingBackend } from '../shared/backends.js';
import type { ClaimedStep, Dispatch, StatementOutcome, TaskEnded } from '../store/events.js';
import type { Notice } from '../store/dispatch.js';
import { formatTraceparent, parseTraceparent, taskRootSpanId, taskTraceId, taskTraceparent } from './ids.js';

/**
 * OpenTelemetry traces of tasks (issue 10; docs/tracing.md).
 *
 * The engine calls the functions below only behind `tracing.enabled`:
 *
 * @example
 *   if (tracing.enabled) traceStepsClaimed(outcome.claimed, claimStart);
 *
 * With tracing off (the default) that boolean is all the hot path pays: no
 * span objects, no ids, no headers; the SDK and the exporter are not even
 * loaded. `startTracing` turns it on when OTEL_EXPORTER_OTLP_ENDPOINT is set
 * or WEFT_OTEL=1 (WEFT_OTEL=0 keeps it off either way).
 *
 * One trace per task, whose id is the task's UUID (see ids.ts), so every
 * process finds the trace of a step from the step's row alone:
 *
 *   weft.task                      root, written when the task ends (deterministic span id)
 *   ├─ POST /v1/tasks              the API request, linked to the caller's traceparent
 *   ├─ weft.task.create            the orchestrator that created it
 *   ├─ weft.step.dispatch          a step made ready: a RabbitMQ publish (its `traceparent`
 *   │  └─ weft.step <name>         header parents the consumer's span), or a PostgreSQL-queue wake
 *   └─ weft.step <name>            one attempt, in the worker; under the task when no message carried a context
 *      ├─ weft.step.claim
 *      ├─ weft.step.run            weft.language, weft.runtime; the handler's `traceparent`
 *      │  └─ weft.bridge.serialise / queue_wait / handler / return (Python, Ruby, TypeScript via the bridge)
 *      └─ weft.step.finish         the statement that recorded the outcome and moved the task on
 */

/** Read on the hot path: everything else in this module runs only when it is true. */
export const tracing = { enabled: false };

/** What the SDK's id generator hands out next (a root span with a deterministic id); set and consumed synchronously. */
export const forcedIds: { traceId?: string; spanId?: string } = {};

let tracer: Tracer | undefined;
let shutdownSdk: (() => Promise<void>) | undefined;
let flushSdk: (() => Promise<void>) | undefined;

export interface StartTracingOptions {
  /** service.name, unless OTEL_SERVICE_NAME says otherwise (e.g. weft-worker). */
  service: string;
  log?: Logger;
  /** The environment: WEFT_OTEL and OTEL_* say whether to trace ({@link tracingWanted}), and the SDK reads the OTEL_* variables. */
  env: NodeJS.ProcessEnv;
  /** Force on (tests), whatever the environment says. */
  force?: boolean;
}

/**
 * Load the SDK and the OTLP/HTTP (JSON) exporter and turn tracing on, if the
 * environment asks for it (or `force`). Returns whether tracing is on. Safe to
 * call more than once: the first provider stays.
 */
export async function startTracing(o: StartTracingOptions): Promise<boolean> {
  const env = o.env;
  if (tracing.enabled) return true;
  if (!o.force && !tracingWanted(env)) return false;
  const { startSdk } = await import('./sdk.js');
  const sdk = startSdk({ service: env.OTEL_SERVICE_NAME?.trim() || o.service, env, forcedIds, log: o.log });
  tracer = sdk.tracer;
  shutdownSdk = sdk.shutdown;
  flushSdk = sdk.flush;
  tracing.enabled = true;
  o.log?.info({ endpoint: sdk.endpoint, service: sdk.service }, 'tracing on: spans go to the OTLP endpoint');
  return true;
}

/** Export the spans buffered so far (tests, and `weft run` before it exits). */
export async function flushTracing(): Promise<void> {
  await flushSdk?.().catch(() => undefined);
}

/** Export what is buffered and turn tracing off (at process stop). Never throws. */
export async function stopTracing(): Promise<void> {
  if (!tracing.enabled) return;
  tracing.enabled = false;
  const stop = shutdownSdk;
  shutdownSdk = undefined;
  flushSdk = undefined;
  tracer = undefined;
  received.clear();
  await stop?.().catch(() => undefined);
}

// ---------------------------------------------------------------------------
// Contexts
// ---------------------------------------------------------------------------

function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Wall-clock ms (epoch) for a span start; 0 when tracing is off, so callers can take it unconditionally. */
export function traceClock(): number {
  return tracing.enabled ? now() : 0;
}

function remote(traceId: string, spanId: string): Context {
  return trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
}

/** The task's root span as a parent, in any process. */
function taskContext(taskId: string): Context {
  return remote(taskTraceId(taskId), taskRootSpanId(taskId));
}

function traceparentOf(span: Span): string {
  const c = span.spanContext();
  return formatTraceparent(c.traceId, c.spanId, (c.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED);
}

function language(runtime: string): string {
  return runtime === 'native' ? 'typescript' : runtime;
}

function stepAttributes(step: ClaimedStep): Attributes {
  return {
    'weft.task.id': step.task_id,
    'weft.namespace': step.namespace,
    'weft.template': step.template,
    'weft.template.version': step.version,
    'weft.step.id': step.id,
    'weft.step.name': step.name,
    'weft.step.type': step.type,
    'weft.step.attempt': step.attempt,
    'weft.runtime': step.runtime,
    'weft.language': language(step.runtime),
    'weft.handler': step.handler,
    'messaging.destination.name': step.queue,
  };
}

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

/** The `traceparent` of a task's trace (its root span), e.g. for the API's answer. */
export function traceparentOfTask(taskId: string): string {
  return taskTraceparent(taskId);
}

/** The orchestrator created a task: `weft.task.create`, from `startMs` (traceClock()) to now. */
export function traceTaskCreated(taskId: string, t: { namespace: string; name: string; version: string }, startMs: number, dispatched: number): void {
  if (!tracer) return;
  const span = tracer.startSpan(
    'weft.task.create',
    {
      kind: SpanKind.INTERNAL,
      startTime: startMs || now(),
      attributes: {
        'weft.task.id': taskId,
        'weft.namespace': t.namespace,
        'weft.template': t.name,
        'weft.template.version': t.version,
        'weft.steps.dispatched': dispatched,
      },
    },
    taskContext(taskId),
  );
  span.end();
}

/**
 * `POST /v1/tasks` created a task: a SERVER span `POST /v1/tasks` in the
 * task's trace, from `startMs` (traceClock() when the request was handled), with a
 * link to the caller's span when the request carried a `traceparent`: the
 * task's trace is its own (its id is the task's), the link leads back.
 */
export function traceApiTaskCreated(taskId: string, startMs: number, callerTraceparent: unknown): void {
  if (!tracer) return;
  const caller = parseTraceparent(Array.isArray(callerTraceparent) ? callerTraceparent[0] : callerTraceparent);
  tracer
    .startSpan(
      'POST /v1/tasks',
      {
        kind: SpanKind.SERVER,
        startTime: startMs || now(),
        attributes: { 'weft.task.id': taskId, 'http.request.method': 'POST', 'http.route': '/v1/tasks', 'http.response.status_code': 201 },
        links: caller
          ? [{ context: { traceId: caller.traceId, spanId: caller.spanId, traceFlags: caller.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true } }]
          : [],
      },
      taskContext(taskId),
    )
    .end();
}

/** A task ended: its root span `weft.task`, from its creation (the database's clock says how long ago) to now. */
function traceTaskEnded(t: TaskEnded): void {
  if (!tracer) return;
  const end = now();
  forcedIds.traceId = taskTraceId(t.task_id);
  forcedIds.spanId = taskRootSpanId(t.task_id);
  let span: Span;
  try {
    span = tracer.startSpan(
      'weft.task',
      {
        root: true,
        kind: SpanKind.INTERNAL,
        startTime: typeof t.ms === 'number' && Number.isFinite(t.ms) ? end - t.ms : end,
        attributes: {
          'weft.task.id': t.task_id,
          'weft.task.state': t.state,
          ...(t.namespace ? { 'weft.namespace': t.namespace } : {}),
          ...(t.name ? { 'weft.template': t.name } : {}),
        },
      },
      ROOT_CONTEXT,
    );
  } finally {
    forcedIds.traceId = undefined;
    forcedIds.spanId = undefined;
  }
  if (t.state === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: 'task failed' });
  span.end(end);
}

// ---------------------------------------------------------------------------
// Messaging
// ---------------------------------------------------------------------------

/**
 * A bus is about to deliver what a statement did: roots for the tasks that
 * ended (their `weft_task` notices), and for the PostgreSQL queue one
 * `weft.step.dispatch` span per step made ready (RabbitMQ makes its own at publish).
 */
export function traceDelivery(backend: MessagingBackend, dispatch: Dispatch | undefined, notices: Notice[]): void {
  if (!tracer) return;
  if (backend === 'pg' && dispatch) {
    const at = now();
    for (const s of dispatch.steps) {
      tracer
        .startSpan(
          'weft.step.dispatch',
          {
            kind: SpanKind.PRODUCER,
            startTime: at,
            attributes: {
              'weft.task.id': s.task_id,
              'weft.step.id': s.step_id,
              ...(s.name ? { 'weft.step.name': s.name } : {}),
              'messaging.system': 'postgresql',
              'messaging.operation.type': 'send',
              'messaging.destination.name': s.queue,
            },
          },
          taskContext(s.task_id),
        )
        .end(at);
    }
  }
  for (const n of notices) {
    if (n.channel !== 'weft_task') continue;
    try {
      traceTaskEnded(JSON.parse(n.payload) as TaskEnded);
    } catch {
      // a notice we cannot read is not worth failing a delivery for
    }
  }
}

/**
 * RabbitMQ is publishing a step message: a `weft.step.dispatch` span, and the
 * headers that carry its context to the consumer.
 */
export function traceMessageHeaders(body: { task_id: string; step_id: string }, queue: string): Record<string, string> {
  if (!tracer) return {};
  const span = tracer.startSpan(
    'weft.step.dispatch',
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'weft.task.id': body.task_id,
        'weft.step.id': body.step_id,
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'send',
        'messaging.destination.name': queue,
      },
    },
    taskContext(body.task_id),
  );
  span.end();
  return { traceparent: traceparentOf(span) };
}

/** Contexts of delivered messages, by step id, until the step is claimed (a duplicate that is never claimed ages out). */
const received = new Map<string, string>();
const MAX_RECEIVED = 10_000;

/** A RabbitMQ message arrived: keep its `traceparent` for the claim. */
export function traceMessageReceived(stepId: string, headers: Record<string, unknown> | undefined): void {
  const tp = headers?.traceparent;
  if (tp === undefined) return;
  if (received.size >= MAX_RECEIVED) received.delete(received.keys().next().value!);
  received.set(stepId, Buffer.isBuffer(tp) ? tp.toString('latin1') : String(tp));
}

// ---------------------------------------------------------------------------
// Steps in a worker
// ---------------------------------------------------------------------------

interface StepTrace {
  span: Span;
  run?: Span;
  runStart?: number;
  phases?: BridgePhases;
}

/** Per claimed step object: gone with the step, nothing to clean up. */
const steps = new WeakMap<ClaimedStep, StepTrace>();

/** Per-call durations through the bridge, in ms. */
export interface BridgePhases {
  serialise: number;
  queueWait: number;
  handler: number;
  return: number;
}

/**
 * Steps claimed by a statement that started at `startMs`: one `weft.step`
 * span per attempt (under the message's context if one came, else under the
 * task) and its `weft.step.claim`. `how`: 'claim' (a claim statement), or
 * 'finish' (claimed by the statement that finished other steps of this
 * worker: a child that became ready there, or, on the PostgreSQL queue, a step
 * waiting in one of its queues).
 */
export function traceStepsClaimed(claimed: ClaimedStep[], startMs: number, how: 'claim' | 'finish' = 'claim'): void {
  if (!tracer) return;
  const at = now();
  const start = startMs || at;
  for (const step of claimed) {
    const tp = parseTraceparent(received.get(step.id));
    if (tp) received.delete(step.id);
    const traceId = taskTraceId(step.task_id);
    const parent = tp && tp.traceId === traceId ? remote(tp.traceId, tp.spanId) : taskContext(step.task_id);
    const attributes = stepAttributes(step);
    const span = tracer.startSpan(`weft.step ${step.name}`, { kind: SpanKind.CONSUMER, startTime: start, attributes }, parent);
    tracer
      .startSpan('weft.step.claim', { startTime: start, attributes: { 'weft.step.id': step.id, 'weft.claim': how } }, trace.setSpan(ROOT_CONTEXT, span))
      .end(at);
    steps.set(step, { span });
  }
}

/** The handler is about to run: `weft.step.run` starts. */
export function traceStepRunning(step: ClaimedStep): void {
  const st = steps.get(step);
  if (!tracer || !st) return;
  st.runStart = now();
  st.run = tracer.startSpan(
    'weft.step.run',
    {
      startTime: st.runStart,
      attributes: { 'weft.language': language(step.runtime), 'weft.runtime': step.runtime, 'weft.handler': step.handler, 'weft.step.id': step.id },
    },
    trace.setSpan(ROOT_CONTEXT, st.span),
  );
}

/** The `traceparent` a handler continues the trace from (its `weft.step.run` span); undefined when tracing is off. */
export function traceparentForHandler(step: ClaimedStep): string | undefined {
  const st = steps.get(step);
  const span = st?.run ?? st?.span;
  return span ? traceparentOf(span) : undefined;
}

/** The bridge measured this call's phases (see BridgeRunner): child spans of `weft.step.run`, laid end to end from its start. */
export function traceBridgePhases(step: ClaimedStep, phases: BridgePhases): void {
  const st = steps.get(step);
  if (st) st.phases = phases;
}

/** The handler returned (or failed): `weft.step.run` ends. */
export function traceStepRan(step: ClaimedStep, outcome: { ok: boolean; error?: { class?: string; message?: string; kind?: string } }): void {
  const st = steps.get(step);
  if (!tracer || !st?.run) return;
  const end = now();
  if (st.phases) {
    const parent = trace.setSpan(ROOT_CONTEXT, st.run);
    let t = st.runStart!;
    for (const [name, ms] of [
      ['weft.bridge.serialise', st.phases.serialise],
      ['weft.bridge.queue_wait', st.phases.queueWait],
      ['weft.bridge.handler', st.phases.handler],
      ['weft.bridge.return', st.phases.return],
    ] as const) {
      const from = t;
      t = Math.min(end, t + Math.max(0, ms));
      tracer.startSpan(name, { startTime: from, attributes: { 'weft.language': language(step.runtime), 'weft.bridge.ms': ms } }, parent).end(t);
    }
  }
  if (!outcome.ok) {
    const e = outcome.error ?? {};
    st.run.addEvent('exception', { 'exception.type': e.class ?? 'Error', 'exception.message': e.message ?? '', 'weft.error.kind': e.kind ?? '' });
    st.run.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  }
  st.run.end(end);
}

/** A finish batch that started at `startMs` committed: each step's `weft.step.finish`, then its `weft.step` span ends. */
export function traceStepsFinished(batch: ClaimedStep[], outcomes: StatementOutcome[], startMs: number): void {
  if (!tracer) return;
  const at = now();
  const states = new Map<string, string>();
  for (const o of outcomes) for (const f of o.finished) states.set(`${f.step_id}#${f.attempt}`, f.state);
  for (const step of batch) {
    const st = steps.get(step);
    if (!st) continue;
    steps.delete(step);
    const state = states.get(`${step.id}#${step.attempt}`) ?? 'not_accepted';
    tracer
      .startSpan(
        'weft.step.finish',
        { startTime: startMs || at, attributes: { 'weft.step.id': step.id, 'weft.step.state': state, 'weft.finish.batch_size': batch.length } },
        trace.setSpan(ROOT_CONTEXT, st.span),
      )
      .end(at);
    st.span.setAttribute('weft.step.state', state);
    if (state !== 'complete') st.span.setStatus({ code: SpanStatusCode.ERROR, message: state });
    st.span.end(at);
  }
}

/** The step's task was cancelled while it ran: its outcome is dropped, and so is the rest of its span. */
export function traceStepDropped(step: ClaimedStep): void {
  const st = steps.get(step);
  if (!st) return;
  steps.delete(step);
  st.span.setAttribute('weft.step.state', 'cancelled');
  st.run?.end();
  st.span.end();
}
