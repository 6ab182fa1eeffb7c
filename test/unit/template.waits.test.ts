/**
 * `sleep` and `wait` steps in templates (issue 19): what the parser accepts
 * and stores (steps.wait), and the errors `weft validate` prints for the
 * mistakes, each with its path, line:column and fix.
 */
import { describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/core/template/parse.js';
import { templateProblems as problemsOf } from '../support/template-problems.js';

const HEAD = 'namespace: demo\nname: flow\nversion: 1.0.0\nsteps:\n  - { name: first, handler: h.first }\n';

describe('sleep and wait steps', () => {
  it('stores what each waits for, with the handler weft.<type> that never runs', () => {
    const def = parseTemplate(
      `${HEAD}  - { name: nap, type: sleep, duration: 1.5s, depends_on: [first] }\n` +
        '  - { name: until_ctx, type: sleep, until: context.remind.at }\n' +
        '  - { name: until_parent, type: sleep, until: first.due_at, depends_on: [first] }\n' +
        '  - { name: ask, type: wait, timeout: 3d, on_timeout: { result: { approved: false } }, payload_schema: { type: object } }\n' +
        '  - { name: forever, type: wait }\n',
      't.yaml',
    );
    const by = Object.fromEntries(def.steps.map((s) => [s.name, s]));
    expect(by.nap).toMatchObject({ type: 'sleep', handler: 'weft.sleep', wait: { ms: 1500, duration: '1.5s' } });
    expect(by.until_ctx!.wait).toEqual({ until: 'context.remind.at', from: 'context', path: ['remind', 'at'] });
    expect(by.until_parent!.wait).toEqual({ until: 'first.due_at', from: 'step', step: 'first', path: ['due_at'] });
    expect(by.ask).toMatchObject({
      handler: 'weft.wait',
      wait: { timeout: '3d', timeout_ms: 259_200_000, on_timeout: 'result', result: { approved: false }, schema: { type: 'object' } },
    });
    expect(by.forever!.wait).toEqual({ on_timeout: 'fail' });
    expect(by.first!.wait).toBeUndefined();
  });

  it('refuses a handler on a waiting step, and a standard step without one', () => {
    const problems = problemsOf(`${HEAD}  - { name: nap, type: sleep, duration: 1s, handler: h.nap }\n  - { name: plain }\n`);
    expect(problems[0]).toMatchObject({
      path: 'steps[1].handler',
      line: 6,
      message: 'steps[1] ("nap") is a sleep step, which runs no handler; it waits in the database without a worker',
      hint: 'remove handler, or make it a standard step',
    });
    expect(problems[1]).toMatchObject({ path: 'steps[2]', line: 7, message: 'steps[2] ("plain") is missing the required field "handler"' });
  });

  it('a sleep needs exactly one of duration and until; a duration needs a unit', () => {
    expect(problemsOf(`${HEAD}  - { name: nap, type: sleep }\n`)[0]).toMatchObject({
      path: 'steps[1]',
      message: `steps[1] ("nap") is a sleep step and needs exactly one of duration (how long) and until (a time in the context or a parent's result)`,
    });
    expect(problemsOf(`${HEAD}  - { name: nap, type: sleep, duration: "15" }\n`)[0]).toMatchObject({
      path: 'steps[1].duration',
      line: 6,
      column: 41,
      message: 'steps[1].duration of steps[1] ("nap") is "15", not a duration; write a number and a unit (ms, s, m, h or d), e.g. 30s, 15m, 12h or 3d',
    });
  });

  it('until must name the context or a parent in depends_on', () => {
    const p = problemsOf(`${HEAD}  - { name: nap, type: sleep, until: frist.due_at, depends_on: [first] }\n`)[0]!;
    expect(p).toMatchObject({ path: 'steps[1].until', hint: 'write until: context.remind_at, or until: first.remind_at' });
    expect(p.message).toContain("it must be context.<path> (the task's context) or <parent>.<path> (the result of a step in its depends_on: first)");
  });

  it('a wait: on_timeout needs a timeout and is fail or { result }; payload_schema must be a JSON Schema; fields of the other type are named', () => {
    const problems = problemsOf(
      `${HEAD}  - { name: a, type: wait, on_timeout: fail }\n` +
        '  - { name: b, type: wait, timeout: 1h, on_timeout: retry }\n' +
        '  - { name: c, type: wait, payload_schema: { type: thing } }\n' +
        '  - { name: d, type: wait, duration: 1s, timeout_ms: 5 }\n' +
        '  - { name: e, handler: h.e, timeout: 1s }\n',
    );
    expect(problems.map((p) => p.path)).toEqual([
      'steps[1].on_timeout',
      'steps[2].on_timeout',
      'steps[3].payload_schema.type',
      'steps[4].duration',
      'steps[4].timeout_ms',
      'steps[5].timeout',
    ]);
    expect(problems[0]!.message).toBe('steps[1] ("a") has on_timeout but no timeout, so it could never time out');
    expect(problems[1]!.hint).toContain('on_timeout: { result: { approved: false } }');
    expect(problems[2]!.message).toMatch(/^steps\[3\]\.payload_schema is not a valid JSON Schema/);
    expect(problems[3]!.message).toBe('steps[4] ("d") has duration, which only a sleep step has; its type is wait');
    expect(problems[4]!.hint).toBe('write timeout: 3d to bound the wait');
    expect(problems[5]).toMatchObject({
      message: 'steps[5] ("e") has timeout, which only a wait step has; its type is standard',
      hint: 'set type: wait, or remove timeout',
    });
  });
});
