import { describe, expect, it } from 'vitest';
import { profileSegments, profileTable, type ProfileSample } from '../../src/bench/profile.js';

/** A task whose instants are `t0` plus the offsets given (ms). */
const sample = (t0: number, o: { created: number; enqueued: number; started: number; finished: number; completed: number; ended: number }): ProfileSample => ({
  client: { sent: t0, created: t0 + o.enqueued + 0.5, ended: t0 + o.ended },
  created_at: t0 + o.created,
  enqueued_at: t0 + o.enqueued,
  started_at: t0 + o.started,
  finished_at: t0 + o.finished,
  completed_at: t0 + o.completed,
});

describe('the single-step task profile', () => {
  const a = sample(1_000, { created: 0.5, enqueued: 0.75, started: 1.75, finished: 2.25, completed: 2.5, ended: 3.5 });
  const b = sample(2_000, { created: 1.5, enqueued: 1.75, started: 4.75, finished: 5.25, completed: 5.5, ended: 7.5 });

  it('splits each task into segments that add up to its client-side total', () => {
    const one = profileSegments([a]);
    expect(one.segments.map((s) => [s.name, s.p50_ms])).toEqual([
      ['submit → task row', 0.5],
      ['create_task: task row → step enqueued', 0.25],
      ['enqueued → claimed (started_at)', 1],
      ['claimed → finished (finished_at)', 0.5],
      ['finished → task complete', 0.25],
      ['task complete → end observed', 1],
    ]);
    expect(one.segments.reduce((sum, s) => sum + s.p50_ms, 0)).toBeCloseTo(one.total.p50_ms, 9);
    expect(one.total).toEqual({ p50_ms: 3.5, p95_ms: 3.5 });
  });

  it('takes P50 and P95 per segment over the samples', () => {
    const two = profileSegments([a, b]);
    expect(two.segments[0]).toMatchObject({ p50_ms: 1, p95_ms: 1.45 });
    expect(two.total).toEqual({ p50_ms: 5.5, p95_ms: 7.3 });
  });

  it('renders one column pair per setting, with the sample counts', () => {
    const md = profileTable([
      { label: 'in one process', samples: [a] },
      { label: 'over REST', samples: [a, b] },
    ]);
    expect(md.split('\n')[0]).toBe('| segment | in one process P50 | P95 | over REST P50 | P95 | what it covers |');
    expect(md).toContain('| enqueued → claimed (started_at) | 1.00 ms | 1.00 ms | 2.00 ms | 2.90 ms |');
    expect(md).toContain('| **submit → end observed** (n = 1 / 2) | **3.50 ms** | 3.50 ms | **5.50 ms** | 7.30 ms |');
  });

  it('refuses an empty column, naming the fix', () => {
    expect(() => profileSegments([])).toThrow('percentile of an empty sample: run at least one sample');
  });
});
