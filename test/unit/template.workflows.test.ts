/**
 * `workflow` steps in templates (issue 19, child workflows): what the parser
 * stores (steps.wait.workflow), the errors `weft validate` prints for the
 * mistakes, the refusal of templates calling each other in a cycle, and the
 * child's context a mapping builds.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/core/template/parse.js';
import { templateProblems as problemsOf } from '../support/template-problems.js';
import { findCallCycle } from '../../src/core/template/calls.js';
import { buildChildContext } from '../../src/core/child-context.js';
import { runValidate } from '../../src/cli/validate.js';

const HEAD = 'namespace: demo\nname: flow\nversion: 1.0.0\nsteps:\n  - { name: first, handler: h.first }\n';

const calling = (name: string, callee: string, version = '1.0.0') =>
  parseTemplate(
    `namespace: demo\nname: ${name}\nversion: ${version}\nsteps:\n  - { name: call, type: workflow, workflow: { name: ${callee} } }\n`,
    `${name}.yaml`,
  );

describe('workflow steps', () => {
  it("stores the child template (namespace defaulting to the parent's) and the context mapping, with the handler weft.workflow that never runs", () => {
    const def = parseTemplate(
      `${HEAD}  - name: pay\n    type: workflow\n    depends_on: [first]\n` +
        '    workflow:\n      name: charge_card\n      version: 2.1.0\n' +
        '      context: { amount: first.total, order: context.order.id, currency: { value: EUR }, whole: first }\n' +
        '  - { name: elsewhere, type: workflow, workflow: { namespace: payments, name: refund, context: context.refund } }\n' +
        '  - { name: bare, type: workflow, workflow: { name: ping } }\n',
      't.yaml',
    );
    const by = Object.fromEntries(def.steps.map((s) => [s.name, s]));
    expect(by.pay).toMatchObject({ type: 'workflow', handler: 'weft.workflow', depends_on: ['first'] });
    expect(by.pay!.wait).toEqual({
      workflow: {
        namespace: 'demo',
        name: 'charge_card',
        version: '2.1.0',
        context: {
          fields: {
            amount: { path: { from: 'step', step: 'first', path: ['total'] } },
            order: { path: { from: 'context', path: ['order', 'id'] } },
            currency: { value: 'EUR' },
            whole: { path: { from: 'step', step: 'first', path: [] } },
          },
        },
      },
    });
    expect(by.elsewhere!.wait).toEqual({ workflow: { namespace: 'payments', name: 'refund', context: { path: { from: 'context', path: ['refund'] } } } });
    expect(by.bare!.wait).toEqual({ workflow: { namespace: 'demo', name: 'ping' } });
  });

  it('refuses a workflow step without workflow, with a handler, or with timeout_ms; and workflow on another type', () => {
    const problems = problemsOf(
      `${HEAD}  - { name: a, type: workflow }\n` +
        '  - { name: b, type: workflow, handler: h.b, timeout_ms: 1000, workflow: { name: x } }\n' +
        '  - { name: c, handler: h.c, workflow: { name: x } }\n',
    );
    expect(problems.map((p) => [p.path, p.line, p.message])).toEqual([
      ['steps[1]', 6, 'steps[1] ("a") is a workflow step and needs workflow: the template it runs as a child task'],
      ['steps[2].handler', 7, 'steps[2] ("b") is a workflow step, which runs no handler; it waits in the database without a worker'],
      ['steps[2].timeout_ms', 7, 'steps[2] ("b") is a workflow step: timeout_ms bounds a handler\'s run, and it runs none'],
      ['steps[3].workflow', 8, 'steps[3] ("c") has workflow, which only a workflow step has; its type is standard'],
    ]);
    expect(problems[0]!.hint).toBe('write workflow: { name: charge_card }, with namespace: and version: when they differ from this template');
  });

  it('refuses a path that is neither the context nor a parent, a context that is neither path nor mapping, a bad version, an unknown field', () => {
    const problems = problemsOf(
      `${HEAD}  - name: pay\n    type: workflow\n    depends_on: [first]\n` +
        '    workflow: { name: charge, version: "1.0", context: { a: second.total, b: 5, c: context..x } }\n' +
        '  - { name: q, type: workflow, workflow: { name: x, context: [1] } }\n' +
        '  - { name: r, type: workflow, workflow: { name: x, verison: 1.0.0 } }\n',
    );
    expect(problems.map((p) => p.path)).toEqual([
      'steps[1].workflow.version',
      'steps[1].workflow.context.a',
      'steps[1].workflow.context.b',
      'steps[1].workflow.context.c',
      'steps[2].workflow.context',
      'steps[3].workflow.verison',
    ]);
    expect(problems[1]!.message).toBe(
      'steps[1].workflow.context.a of steps[1] ("pay") is a string ("second.total"); a value of the child\'s context is a path, context.<path> ' +
        "(this task's context) or <parent>.<path> (the result of a step in its depends_on: first), or { value: <a literal> }",
    );
    expect(problems[1]!.hint).toBe('write e.g. context.order_id, first.amount or { value: EUR }');
    expect(problems[0]!.message).toContain('it must be a semantic version such as 1.0.0');
    expect(problems[5]!.message).toBe('unknown field "verison" in steps[3].workflow; did you mean "version"?');
  });

  it('finds templates calling each other in a cycle, itself included; pinned versions that do not call back are no cycle', () => {
    expect(findCallCycle([calling('a', 'b'), calling('b', 'c'), parseTemplate(`${HEAD}`.replace('flow', 'c'), 'c.yaml')])).toBeUndefined();
    expect(findCallCycle([calling('a', 'b'), calling('b', 'a')])).toBe('demo/a@1.0.0 (step call) → demo/b@1.0.0 (step call) → demo/a@1.0.0');
    expect(findCallCycle([calling('self', 'self')])).toBe('demo/self@1.0.0 (step call) → demo/self@1.0.0');
    const pinned = parseTemplate(
      'namespace: demo\nname: a\nversion: 2.0.0\nsteps:\n  - { name: call, type: workflow, workflow: { name: b, version: 1.0.0 } }\n',
      'a2.yaml',
    );
    const b = parseTemplate(
      'namespace: demo\nname: b\nversion: 1.0.0\nsteps:\n  - { name: call, type: workflow, workflow: { name: a, version: 1.0.0 } }\n',
      'b.yaml',
    );
    const a1 = parseTemplate('namespace: demo\nname: a\nversion: 1.0.0\nsteps:\n  - { name: only, handler: h }\n', 'a1.yaml');
    expect(findCallCycle([pinned, b, a1])).toBeUndefined();
  });

  it('weft validate refuses a directory whose templates call each other in a cycle, naming the file, the step and the cycle', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-wf-'));
    try {
      await writeFile(
        join(dir, 'a.yaml'),
        'namespace: demo\nname: a\nversion: 1.0.0\nsteps:\n  - { name: x, handler: h }\n  - { name: go, type: workflow, workflow: { name: b } }\n',
      );
      await writeFile(join(dir, 'b.yaml'), 'namespace: demo\nname: b\nversion: 1.0.0\nsteps:\n  - { name: back, type: workflow, workflow: { name: a } }\n');
      const out: string[] = [];
      const err: string[] = [];
      expect(await runValidate([dir], { out: (s) => out.push(s), err: (s) => err.push(s) })).toBe(1);
      expect(err.join('\n')).toContain(
        `template ${join(dir, 'a.yaml')}: ` +
          'templates run each other as child workflows in a cycle, so a task would start children forever: demo/a@1.0.0 (step go) → demo/b@1.0.0 (step back) → demo/a@1.0.0',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("a child's context", () => {
  const parents = { price: { total: 12.5, lines: [1, 2] } };
  const context = { order: { id: 'A-1', note: null } };

  it('takes each field from its path or its literal, leaving out fields whose path holds nothing', () => {
    const built = buildChildContext(
      {
        fields: {
          amount: { path: { from: 'step', step: 'price', path: ['total'] } },
          id: { path: { from: 'context', path: ['order', 'id'] } },
          note: { path: { from: 'context', path: ['order', 'note'] } },
          coupon: { path: { from: 'context', path: ['order', 'coupon'] } },
          deep: { path: { from: 'step', step: 'price', path: ['lines', '0'] } },
          currency: { value: 'EUR' },
        },
      },
      context,
      parents,
    );
    expect(built).toEqual({ ok: true, context: { amount: 12.5, id: 'A-1', note: null, currency: 'EUR' } });
  });

  it('is {} without a mapping; the whole mapping at a path; an error naming the path when that is not a mapping', () => {
    expect(buildChildContext(undefined, context, parents)).toEqual({ ok: true, context: {} });
    expect(buildChildContext({ path: { from: 'context', path: ['order'] } }, context, parents)).toEqual({ ok: true, context: { id: 'A-1', note: null } });
    expect(buildChildContext({ path: { from: 'step', step: 'price', path: ['total'] } }, context, parents)).toEqual({
      ok: false,
      message: "the child's context is price.total, which is not a mapping (12.5)",
    });
    expect(buildChildContext({ path: { from: 'context', path: ['nothing'] } }, context, parents)).toEqual({
      ok: false,
      message: "the child's context is context.nothing, which is missing",
    });
  });
});
