import client from 'prom-client';
import type { StepRunner } from './runner.js';
import type { RuntimeStats, HistogramSnapshot } from '../bridge/types.js';

const PHASES = ['serialise', 'queueWait', 'run', 'return'] as const;
const PHASE_LABEL: Record<(typeof PHASES)[number], string> = { serialise: 'serialise', queueWait: 'queue_wait', run: 'run', return: 'return' };

/**
 * A worker's Prometheus metrics (GET /metrics on `weft worker --port`).
 * Everything is read when scraped: the worker's counters, and for bridged
 * runtimes the addon's lock-free counters and timing histograms, exported
 * as Prometheus histograms with the addon's own (log2, µs) buckets.
 */
export function workerMetrics(worker: { readonly counts: Readonly<Record<string, number>>; inFlight(): number }, runner: StepRunner): client.Registry {
  const registry = new client.Registry();
  const registers = [registry];
  const runtime = runner.runtime;
  new client.Gauge({
    name: 'weft_worker_steps',
    help: 'Steps this worker handled, by outcome (claimed, duplicates dropped, succeeded, failed, lost to an expired lease)',
    labelNames: ['runtime', 'outcome'],
    registers,
    collect() {
      for (const [outcome, n] of Object.entries(worker.counts)) this.set({ runtime, outcome }, n);
    },
  });
  new client.Gauge({
    name: 'weft_worker_in_flight',
    help: 'Steps running now',
    labelNames: ['runtime'],
    registers,
    collect() {
      this.set({ runtime }, worker.inFlight());
    },
  });
  const stats = () => runner.stats?.() as RuntimeStats | undefined;
  if (!runner.stats) return registry;

  new client.Gauge({
    name: 'weft_bridge_calls',
    help: 'Bridge calls by outcome (dispatched, completed, failed, timed_out, rejected_by_breaker, rejected_queue_full, late_results)',
    labelNames: ['runtime', 'outcome'],
    registers,
    collect() {
      const s = stats();
      if (!s) return;
      const values: Record<string, number> = {
        dispatched: s.dispatched,
        completed: s.completed,
        failed: s.failed,
        timed_out: s.timedOut,
        rejected_by_breaker: s.rejectedByBreaker,
        rejected_queue_full: s.rejectedQueueFull,
        late_results: s.lateResults,
      };
      for (const [outcome, n] of Object.entries(values)) this.set({ runtime, outcome }, n);
    },
  });
  new client.Gauge({
    name: 'weft_bridge_in_flight',
    help: 'Bridge calls in flight',
    labelNames: ['runtime'],
    registers,
    collect() {
      const s = stats();
      if (s) this.set({ runtime }, s.inFlight);
    },
  });
  new client.Gauge({
    name: 'weft_bridge_breaker_state',
    help: 'Circuit breaker: 0 closed, 1 open, 2 half-open',
    labelNames: ['runtime'],
    registers,
    collect() {
      const s = stats();
      if (s) this.set({ runtime }, s.breaker.state === 'closed' ? 0 : s.breaker.state === 'open' ? 1 : 2);
    },
  });
  registry.registerMetric(new NativeHistogram(runtime, stats) as unknown as client.Metric);
  return registry;
}

/** The addon's histograms as one Prometheus histogram with a `phase` label (seconds). */
class NativeHistogram {
  readonly name = 'weft_bridge_phase_seconds';
  readonly help = 'Time per bridge call phase: serialise, queue_wait, run (the handler, with its JSON work), return';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(
    private readonly runtime: string,
    private readonly stats: () => RuntimeStats | undefined,
  ) {}

  get() {
    const s = this.stats();
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    if (s) {
      for (const phase of PHASES) {
        const h: HistogramSnapshot = s.histograms[phase];
        const labels = { runtime: this.runtime, phase: PHASE_LABEL[phase] };
        let cumulative = 0;
        h.upperBoundsUs.forEach((ub, i) => {
          cumulative += h.counts[i] ?? 0;
          values.push({ labels: { ...labels, le: ub / 1e6 }, value: cumulative, metricName: `${this.name}_bucket` });
        });
        values.push({ labels: { ...labels, le: '+Inf' }, value: h.count, metricName: `${this.name}_bucket` });
        values.push({ labels, value: h.sumNs / 1e9, metricName: `${this.name}_sum` });
        values.push({ labels, value: h.count, metricName: `${this.name}_count` });
      }
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset() {}
}
