import client from 'prom-client';
import type { Database } from '../store/database.js';
import type { MessageBus } from '../messaging/types.js';
import { RESULTS_QUEUE, stepQueue } from '../messaging/queues.js';
import { namespaceRuntimes } from '../store/templates.js';

/**
 * The orchestrator's Prometheus metrics (GET /metrics). Hot-path updates are
 * a histogram observation each; everything that needs a query (steps by
 * state, queue depth) is collected only when scraped.
 */
export class OrchestratorMetrics {
  readonly registry = new client.Registry();
  readonly stepLatency: client.Histogram;
  readonly taskLatency: client.Histogram;
  readonly reportsProcessed: client.Counter<'outcome'>;
  readonly tasksCreated: client.Counter;
  readonly poolAcquire: client.Histogram;

  constructor(db: Database, bus: MessageBus) {
    const registers = [this.registry];
    const msBuckets = [0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 500, 1000, 2500, 10000];
    this.stepLatency = new client.Histogram({
      name: 'weft_step_latency_ms',
      help: 'From a step\'s dispatch to orchestration accepting its result (ms)',
      buckets: msBuckets,
      registers,
    });
    this.taskLatency = new client.Histogram({
      name: 'weft_task_latency_ms',
      help: 'From task creation to completion, server side (ms)',
      buckets: msBuckets,
      registers,
    });
    this.reportsProcessed = new client.Counter({
      name: 'weft_step_reports_total',
      help: 'Worker reports processed by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.tasksCreated = new client.Counter({ name: 'weft_tasks_created_total', help: 'Tasks created', registers });
    this.poolAcquire = new client.Histogram({
      name: 'weft_db_pool_acquire_ms',
      help: 'Time to acquire a database connection (ms)',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 50, 100, 500],
      registers,
    });
    db.acquireObservers.push((ms) => this.poolAcquire.observe(ms));

    new client.Gauge({
      name: 'weft_steps',
      help: 'Steps by state',
      labelNames: ['state'],
      registers,
      async collect() {
        const { rows } = await db.query<{ state: string; n: string }>('SELECT state, count(*) AS n FROM weft.steps GROUP BY state');
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
        const queues = [RESULTS_QUEUE, ...(await namespaceRuntimes(db)).map((r) => stepQueue(r.namespace, r.runtime))];
        const depth = await bus.depth(queues);
        this.reset();
        for (const [q, n] of Object.entries(depth)) this.set({ queue: q }, n);
      },
    });
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
