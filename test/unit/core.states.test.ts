import { describe, expect, it } from 'vitest';
import {
  STEP_STATES,
  STEP_TRANSITIONS,
  TASK_STATES,
  TASK_TRANSITIONS,
  IllegalTransitionError,
  assertStepTransition,
  assertTaskTransition,
  isLegalStepTransition,
  TERMINAL_STEP_STATES,
  TERMINAL_TASK_STATES,
} from '../../src/core/states.js';

describe('step state machine', () => {
  const legal = STEP_STATES.flatMap((from) => STEP_TRANSITIONS[from].map((to) => [from, to] as const));
  const illegal = STEP_STATES.flatMap((from) => STEP_STATES.filter((to) => !STEP_TRANSITIONS[from].includes(to)).map((to) => [from, to] as const));

  it.each(legal)('allows %s → %s', (from, to) => {
    expect(() => assertStepTransition(from, to)).not.toThrow();
  });

  it.each(illegal)('refuses %s → %s with an error naming the legal moves', (from, to) => {
    expect(() => assertStepTransition(from, to)).toThrow(IllegalTransitionError);
    expect(() => assertStepTransition(from, to)).toThrow(`illegal step transition ${from} → ${to}`);
  });

  it('leaves a terminal state only when an operator retries (error or cancelled back to pending, enqueued, or waiting for a sleep or wait step)', () => {
    expect(STEP_TRANSITIONS.complete).toEqual([]);
    for (const s of TERMINAL_STEP_STATES) {
      for (const to of STEP_TRANSITIONS[s]) expect(['pending', 'enqueued', 'waiting']).toContain(to);
    }
    expect(() => assertStepTransition('complete', 'enqueued')).toThrow('nothing (it is terminal)');
    expect(() => assertStepTransition('error', 'running')).toThrow('from error a step may go to enqueued, pending');
  });

  it('reaches complete on the happy path in four moves', () => {
    const path = ['pending', 'enqueued', 'running', 'succeeded', 'complete'] as const;
    for (let i = 1; i < path.length; i++) expect(isLegalStepTransition(path[i - 1]!, path[i]!)).toBe(true);
  });

  it('names an unknown state', () => {
    expect(() => assertStepTransition('bogus' as never, 'pending')).toThrow('step state "bogus" is not a step state');
  });
});

describe('task state machine', () => {
  it.each(TASK_STATES.flatMap((from) => TASK_STATES.map((to) => [from, to] as const)))('%s → %s', (from, to) => {
    const ok = TASK_TRANSITIONS[from].includes(to);
    if (ok) expect(() => assertTaskTransition(from, to)).not.toThrow();
    else expect(() => assertTaskTransition(from, to)).toThrow(IllegalTransitionError);
  });

  it('says complete leads nowhere, and error or cancelled only back to running (a retry)', () => {
    expect(() => assertTaskTransition('complete', 'running')).toThrow('it is terminal');
    for (const s of TERMINAL_TASK_STATES) {
      for (const to of TASK_STATES) if (to !== 'running') expect(() => assertTaskTransition(s, to)).toThrow(IllegalTransitionError);
    }
    expect(() => assertTaskTransition('error', 'running')).not.toThrow();
    expect(() => assertTaskTransition('cancelled', 'running')).not.toThrow();
  });
});
