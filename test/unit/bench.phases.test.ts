import { describe, expect, it } from 'vitest';
import { phasesOf } from '../../src/benchmark/runner.js';

const at = (ms: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms)).toISOString();

describe("phasesOf: where one chain task's time went, from its step timestamps", () => {
  // Two steps: created 0; s1 enqueued 1, started 3, finished 6; s2 enqueued 8, started 9, finished 12; completed 14.
  const view = {
    created_at: at(0),
    completed_at: at(14),
    duration_ms: 14,
    steps: [
      { name: 's2', enqueued_at: at(8), started_at: at(9), finished_at: at(12) },
      { name: 's1', enqueued_at: at(1), started_at: at(3), finished_at: at(6) },
    ],
  };

  it('splits create, queue, execute, orchestrate, finalise and the client share', () => {
    expect(phasesOf(view, 20, 4)).toEqual({ create_ms: 1, queue_ms: 3, execute_ms: 6, orchestrate_ms: 2, finalize_ms: 2, client_ms: 6, post_ms: 4 });
  });

  it('the server phases add up to the server duration', () => {
    const p = phasesOf(view, 20, 4);
    expect(p.create_ms + p.queue_ms + p.execute_ms + p.orchestrate_ms + p.finalize_ms).toBe(view.duration_ms);
  });
});
