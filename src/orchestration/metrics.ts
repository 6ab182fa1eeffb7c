import client from 'prom-client';
import type { Database } from '../store/database.js';
import type { MessageBus } from '../messaging/types.js';
import { stepQueue } from '../messaging/queues.js';
import { listProcesses } from '../store/processes.js';
import { addSnapshots, type BucketSnapshot } from '../shared/histogram.js';
import { namespaceRuntimes } from '../store/templates.js';

/**
 * The orchestrator's Prometheus metrics (GET /metrics). Hot-path updates are
 * a histogram observation each; everything that needs a query (steps by
 * state, queue depth) is collected only when scraped.
 */
export class OrchestratorMetrics {
  readonly registry = new client.Registry();
  readonly taskLatency: client.Histogram;
  readonly tasksCreated: client.Counter;
  readonly tasksEnded: client.Counter<'state'>;
  readonly poolAcquire: client.Histogram;

  constructor(db: Database, bus: MessageBus) {
    const registers = [this.registry];
    const msBuckets = [0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 500, 1000, 2500, 10000];
    this.taskLatency = new client.Histogram({
      name: 'weft_task_latency_ms',
      help: 'From task creation to its end, server side (ms), for every task any process ended while this orchestrator listened',
      buckets: msBuckets,
      registers,
    });
    this.tasksCreated = new client.Counter({ name: 'weft_tasks_created_total', help: 'Tasks created by this orchestrator', registers });
    this.tasksEnded = new client.Counter({
      name: 'weft_tasks_ended_total',
      help: 'Tasks that ended (any process), by state',
      labelNames: ['state'],
      registers,
    });
    this.poolAcquire = new client.Histogram({
      name: 'weft_db_pool_acquire_ms',
      help: 'Time to acquire a database connection (ms)',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 50, 100, 500],
      registers,
    });
    db.acquireObservers.push((ms) => this.poolAcquire.observe(ms));

    new client.Gauge({
      name: 'weft_steps',
      help: 'Steps in a live state (enqueued, running, waiting_retry); read through the partial indexes, so as cheap with a million finished steps as with none',
      labelNames: ['state'],
      registers,
      async collect() {
        const { rows } = await db.query<{ state: string; n: string }>(
          `SELECT 'enqueued' AS state, count(*) AS n FROM weft.steps WHERE state = 'enqueued'
           UNION ALL SELECT 'running', count(*) FROM weft.steps WHERE state = 'running'
           UNION ALL SELECT 'waiting_retry', count(*) FROM weft.steps WHERE state = 'waiting_retry'`,
        );
        this.reset();
        for (const r of rows) this.set({ state: r.state }, Number(r.n));
      },
    });
    new client.Gauge({
      name: 'weft_queue_depth',
      help: 'Messages waiting per queue',
      labelNames: ['queue'],
      registers,
      async collect() {
        const queues = (await namespaceRuntimes(db)).map((r) => stepQueue(r.namespace, r.runtime));
        const depth = await bus.depth(queues);
        this.reset();
        for (const [q, n] of Object.entries(depth)) this.set({ queue: q }, n);
      },
    });
    // Step metrics come from the workers, which finish the steps: each
    // publishes its counters and step latency histogram with its heartbeat.
    const workers = async () => (await listProcesses(db, { kind: 'worker' })).map((p) => ({ runtime: p.runtime ?? 'unknown', info: p.info as WorkerInfo }));
    new client.Gauge({
      name: 'weft_steps_total',
      help: 'Steps handled by the workers now registered, by runtime and outcome (claimed, succeeded, failed, retried, lost)',
      labelNames: ['runtime', 'outcome'],
      registers,
      async collect() {
        this.reset();
        for (const w of await workers()) {
          for (const [outcome, n] of Object.entries(w.info.counts ?? {})) this.inc({ runtime: w.runtime, outcome }, Number(n) || 0);
        }
      },
    });
    this.registry.registerMetric(new WorkerLatencyHistogram(workers) as unknown as client.Metric);
    const pool = (name: string, help: string, pick: (s: ReturnType<Database['poolStats']>) => number) =>
      new client.Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(pick(db.poolStats()));
        },
      });
    pool('weft_db_pool_in_use', 'Database connections in use', (s) => s.inUse);
    pool('weft_db_pool_idle', 'Idle database connections', (s) => s.idle);
    pool('weft_db_pool_waiting', 'Callers waiting for a database connection', (s) => s.waiting);
    pool('weft_db_pool_slow_acquires', 'Acquires slower than slow_acquire_threshold_ms', (s) => s.slowAcquires);
  }
}

interface WorkerInfo {
  counts?: Record<string, number>;
  step_latency_ms?: BucketSnapshot;
}

/** The workers' step latency histograms, added up per runtime, as one Prometheus histogram. */
class WorkerLatencyHistogram {
  readonly name = 'weft_step_latency_ms';
  readonly help = 'From a worker starting a step to its outcome committed (ms), summed over the workers now registered';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(private readonly workers: () => Promise<Array<{ runtime: string; info: WorkerInfo }>>) {}

  async get() {
    const byRuntime = new Map<string, BucketSnapshot[]>();
    for (const w of await this.workers()) {
      if (!w.info.step_latency_ms) continue;
      byRuntime.set(w.runtime, [...(byRuntime.get(w.runtime) ?? []), w.info.step_latency_ms]);
    }
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const [runtime, list] of byRuntime) {
      const h = addSnapshots(list);
      if (!h) continue;
      let cumulative = 0;
      h.bounds.forEach((ub, i) => {
        cumulative += h.counts[i] ?? 0;
        values.push({ labels: { runtime, le: ub }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { runtime, le: '+Inf' }, value: h.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { runtime }, value: h.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { runtime }, value: h.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset() {}
}
