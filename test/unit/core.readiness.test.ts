import { describe, expect, it } from 'vitest';
import { readySteps, type StepSnapshot } from '../../src/core/readiness.js';
import { executionStatus } from '../../src/core/status.js';
import type { StepState } from '../../src/core/states.js';

const NOW = 1_700_000_000_000;

function snap(name: string, state: StepState, parents: string[] = [], extra: Partial<StepSnapshot> = {}): StepSnapshot {
  return { name, state, run_after: null, parents, ...extra };
}

describe('readySteps', () => {
  it('offers a root pending step', () => {
    expect(readySteps([snap('a', 'pending')], NOW)).toEqual(['a']);
  });

  it('offers a pending step only when every parent is complete', () => {
    const steps = [snap('a', 'complete'), snap('b', 'running'), snap('c', 'pending', ['a']), snap('d', 'pending', ['a', 'b']), snap('e', 'pending', ['c'])];
    expect(readySteps(steps, NOW)).toEqual(['c']);
  });

  it.each(['succeeded', 'failed', 'waiting_retry', 'error', 'cancelled', 'enqueued'] as const)('does not count a parent in %s as complete', (state) => {
    expect(readySteps([snap('p', state, [], { run_after: NOW + 1 }), snap('c', 'pending', ['p'])], NOW)).not.toContain('c');
  });

  it('does not run a step whose parent is missing from the snapshot', () => {
    expect(readySteps([snap('c', 'pending', ['ghost'])], NOW)).toEqual([]);
  });

  it('offers waiting_retry once run_after has passed (inclusive), and not before', () => {
    const at = (run_after: number | null) => readySteps([snap('r', 'waiting_retry', [], { run_after })], NOW);
    expect(at(NOW - 1)).toEqual(['r']);
    expect(at(NOW)).toEqual(['r']);
    expect(at(NOW + 1)).toEqual([]);
    expect(at(null)).toEqual(['r']);
  });

  it.each(['enqueued', 'running', 'succeeded', 'failed', 'complete', 'error', 'cancelled'] as const)('never offers a step in %s', (state) => {
    expect(readySteps([snap('x', state)], NOW)).toEqual([]);
  });
});

describe('executionStatus', () => {
  it('blocked_by_failures wins over a ready step', () => {
    const steps = [snap('a', 'error'), snap('b', 'pending')];
    expect(readySteps(steps, NOW)).toEqual(['b']);
    expect(executionStatus(steps, NOW)).toBe('blocked_by_failures');
  });

  it('has_ready_steps wins over processing', () => {
    expect(executionStatus([snap('a', 'running'), snap('b', 'pending')], NOW)).toBe('has_ready_steps');
  });

  it.each(['enqueued', 'running'] as const)('processing while a step is %s', (state) => {
    expect(executionStatus([snap('a', 'complete'), snap('b', state), snap('c', 'pending', ['b'])], NOW)).toBe('processing');
  });

  it('processing wins over waiting', () => {
    expect(executionStatus([snap('a', 'running'), snap('r', 'waiting_retry', [], { run_after: NOW + 5 })], NOW)).toBe('processing');
  });

  it('all_complete when every step is complete', () => {
    expect(executionStatus([snap('a', 'complete'), snap('b', 'complete', ['a'])], NOW)).toBe('all_complete');
  });

  it('waiting for a retry whose backoff has not elapsed, then has_ready_steps once it has', () => {
    const steps = [snap('a', 'complete'), snap('r', 'waiting_retry', ['a'], { run_after: NOW + 500 })];
    expect(executionStatus(steps, NOW)).toBe('waiting');
    expect(executionStatus(steps, NOW + 500)).toBe('has_ready_steps');
  });

  it('waiting, not all_complete, for an empty task', () => {
    expect(executionStatus([], NOW)).toBe('waiting');
  });

  it('cancelled once a step is cancelled, even beside a ready step; blocked_by_failures wins over it (a failure cancels the rest)', () => {
    expect(executionStatus([snap('a', 'complete'), snap('b', 'cancelled'), snap('c', 'pending', ['a'])], NOW)).toBe('cancelled');
    expect(executionStatus([snap('a', 'error'), snap('b', 'cancelled')], NOW)).toBe('blocked_by_failures');
  });
});
