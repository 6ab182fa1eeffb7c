import { describe, expect, it } from 'vitest';
import { OutcomeError, batches, decision, interpretResult } from '../../src/core/outcome.js';
import type { StepType } from '../../src/core/template/types.js';

const plainTypes: StepType[] = ['standard', 'deferred_convergence', 'batch_worker'];

describe('outcome helpers', () => {
  it('build the exact wire shapes every SDK produces', () => {
    expect(decision(['a', 'b'])).toEqual({ $weft: 'decision', steps: ['a', 'b'] });
    expect(batches([{ offset: 0 }, 2])).toEqual({ $weft: 'batches', cursors: [{ offset: 0 }, 2] });
    expect(JSON.parse(JSON.stringify(decision([])))).toEqual({ $weft: 'decision', steps: [] });
  });

  it('copy their argument, so a later change by the handler does not leak in', () => {
    const steps = ['a'];
    const d = decision(steps);
    steps.push('b');
    expect(d.steps).toEqual(['a']);
  });
});

describe('interpretResult', () => {
  it.each(plainTypes)('a %s step returns plain values', (type) => {
    for (const value of [42, 'text', null, undefined, [1, 2], { total: 3 }, { weft: 'decision' }]) {
      expect(interpretResult(type, value)).toEqual({ kind: 'value', value });
    }
  });

  it('reads a decision, including an empty one', () => {
    expect(interpretResult('decision', decision(['auto_approve']))).toEqual({ kind: 'decision', steps: ['auto_approve'] });
    expect(interpretResult('decision', { $weft: 'decision', steps: [] })).toEqual({ kind: 'decision', steps: [] });
  });

  it('reads batches, including none', () => {
    expect(interpretResult('batchable', batches([{ a: 1 }, null, 'x']))).toEqual({ kind: 'batches', cursors: [{ a: 1 }, null, 'x'] });
    expect(interpretResult('batchable', { $weft: 'batches', cursors: [] })).toEqual({ kind: 'batches', cursors: [] });
  });

  const cases: Array<[string, StepType, unknown, string]> = [
    [
      'a decision step returning a plain value',
      'decision',
      42,
      'a decision step must return a decision outcome { "$weft": "decision", "steps": [...] }, but returned 42',
    ],
    [
      'a decision step returning null',
      'decision',
      null,
      'a decision step must return a decision outcome { "$weft": "decision", "steps": [...] }, but returned null',
    ],
    ['a decision step returning undefined', 'decision', undefined, 'but returned undefined; return decision(["step_a", ...])'],
    ['a decision step returning a bare array', 'decision', ['a'], 'but returned ["a"]'],
    ['a decision step returning batches', 'decision', batches([1]), 'but returned {"$weft":"batches","cursors":[1]}'],
    ['a decision without steps', 'decision', { $weft: 'decision' }, 'decision outcome "steps" must be an array of step names (strings), but was undefined'],
    [
      'a decision with a string for steps',
      'decision',
      { $weft: 'decision', steps: 'a' },
      'decision outcome "steps" must be an array of step names (strings), but was "a"',
    ],
    ['a decision with a number among steps', 'decision', { $weft: 'decision', steps: ['a', 3] }, 'but was ["a",3]'],
    [
      'a decision with an extra key',
      'decision',
      { $weft: 'decision', steps: [], step: ['a'] },
      'decision outcome has unexpected key(s) "step"; expected exactly "$weft" and "steps"',
    ],
    [
      'a batchable step returning a plain array',
      'batchable',
      [1, 2],
      'a batchable step must return a batches outcome { "$weft": "batches", "cursors": [...] }, but returned [1,2]',
    ],
    ['a batchable step returning a decision', 'batchable', decision(['a']), 'a batchable step must return a batches outcome'],
    ['batches without cursors', 'batchable', { $weft: 'batches' }, 'batches outcome "cursors" must be an array, but was undefined'],
    ['batches with an object for cursors', 'batchable', { $weft: 'batches', cursors: { a: 1 } }, 'batches outcome "cursors" must be an array, but was {"a":1}'],
    ['batches with an extra key', 'batchable', { $weft: 'batches', cursors: [], total: 3 }, 'batches outcome has unexpected key(s) "total"'],
    [
      'a standard step returning a decision',
      'standard',
      decision(['a']),
      'a standard step returned a "decision" outcome {"$weft":"decision","steps":["a"]}, but only decision steps may return decisions',
    ],
    ['a batch_worker returning batches', 'batch_worker', batches([]), 'a batch_worker step returned a "batches" outcome'],
    ['a standard step using the reserved key', 'deferred_convergence', { $weft: 1 }, 'a deferred_convergence step returned a reserved outcome {"$weft":1}'],
  ];

  it.each(cases)('refuses %s with a clear OutcomeError', (_label, type, value, message) => {
    let caught: unknown;
    try {
      interpretResult(type, value);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(OutcomeError);
    const err = caught as OutcomeError;
    expect(err.name).toBe('OutcomeError');
    expect(err.code).toBe('outcome_invalid');
    expect(err.permanent).toBe(true);
    expect(err.message).toContain(message);
  });

  it('shortens a huge value in the message', () => {
    const big = 'x'.repeat(10_000);
    expect(() => interpretResult('decision', big)).toThrow(/but returned "x{199}…; return decision/);
  });
});
