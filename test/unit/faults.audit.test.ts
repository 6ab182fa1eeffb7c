/**
 * The fault suite's audit of the transition logs (test/faults/audit.ts) must
 * be able to fail: a double completion, an illegal move, a move from a state
 * the step was not in, and a gap in seq are each counted.
 */
import { describe, expect, it } from 'vitest';
import { checkChains, type TransitionRow } from '../faults/audit.js';
import { STEP_TRANSITIONS } from '../../src/core/states.js';

const chain = (id: string, ...moves: Array<[number, string | null, string]>): TransitionRow[] =>
  moves.map(([seq, from_state, to_state]) => ({ id, seq, from_state, to_state }));

const happy = chain('a', [1, null, 'pending'], [2, 'pending', 'enqueued'], [3, 'enqueued', 'running'], [4, 'running', 'complete']);

describe('checkChains', () => {
  it('accepts a legal history, a lost worker and a presumed-lost result included', () => {
    const rows = [...happy, ...chain('b', [1, null, 'pending'], [2, 'pending', 'running'], [3, 'running', 'enqueued'], [4, 'enqueued', 'complete'])];
    const problems: string[] = [];
    expect(checkChains(rows, STEP_TRANSITIONS, 'step', problems)).toEqual({ illegal: 0, duplicated: 0 });
    expect(problems).toEqual([]);
  });

  it('counts a step completed twice', () => {
    const problems: string[] = [];
    const rows = [...happy.slice(0, 3), ...chain('a', [4, 'running', 'complete'], [5, 'complete', 'complete'])];
    expect(checkChains(rows, STEP_TRANSITIONS, 'step', problems)).toEqual({ illegal: 1, duplicated: 1 });
    expect(problems).toContain('step a was completed 2 times');
  });

  it('counts a move the state machine forbids, one from a state the step was not in, a gap in seq and a bad first row', () => {
    const problems: string[] = [];
    const rows = [
      ...chain('a', [1, null, 'pending'], [2, 'pending', 'complete']),
      ...chain('b', [1, null, 'pending'], [2, 'enqueued', 'running']),
      ...chain('c', [1, null, 'pending'], [3, 'pending', 'enqueued']),
      ...chain('d', [1, 'pending', 'enqueued']),
    ];
    expect(checkChains(rows, STEP_TRANSITIONS, 'step', problems)).toEqual({ illegal: 4, duplicated: 0 });
    expect(problems[0]).toBe('step a seq 2: pending→complete after seq 1 null→pending');
  });
});
