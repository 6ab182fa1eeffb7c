/**
 * How `weft task show` prints a child workflow's links (issue 19): the parent
 * task above the steps, the child task of each workflow step below them, and
 * the child task in `--step` output (or that it has not started).
 */
import { describe, expect, it } from 'vitest';
import { printStep, printTask } from '../../src/cli/task-format.js';
import type { Task, TaskStep } from '../../src/client/client.js';

const at = '2026-12-07T09:00:00.000Z';
function stepOf(name: string, over: Partial<TaskStep> = {}): TaskStep {
  return {
    id: `00000000-0000-4000-8000-00000000000${name.length}`,
    name,
    template_step: name,
    type: 'standard',
    runtime: 'native',
    handler: `h.${name}`,
    state: 'complete',
    attempts: 1,
    max_attempts: 3,
    failures: 0,
    losses: 0,
    worker_id: null,
    queue: null,
    parents: [],
    result: { ok: true },
    error: null,
    errors: [],
    batch: null,
    run_after: null,
    wait: null,
    callback_path: null,
    child_task_id: null,
    created_at: at,
    enqueued_at: at,
    started_at: at,
    finished_at: at,
    duration_ms: 1.5,
    ...over,
  };
}
const CHILD = '11111111-2222-4333-8444-555555555555';
const PARENT = '99999999-8888-4777-8666-555555555555';
const task: Task = {
  id: CHILD,
  namespace: 'shop',
  name: 'order_flow',
  version: '1.0.0',
  state: 'running',
  ended: false,
  context: {},
  idempotency_key: null,
  error: null,
  run_at: null,
  parent: { task_id: PARENT, step: 'fulfil', namespace: 'shop', name: 'big_order' },
  created_at: at,
  updated_at: at,
  completed_at: null,
  duration_ms: null,
  steps: [
    stepOf('price'),
    stepOf('charge', {
      type: 'workflow',
      handler: 'weft.workflow',
      state: 'waiting',
      result: null,
      child_task_id: PARENT.replace('9', 'a'),
      parents: ['price'],
    }),
    stepOf('refund', { type: 'workflow', handler: 'weft.workflow', state: 'pending', result: null, parents: ['charge'] }),
  ],
};

describe('weft task show of child workflows', () => {
  it('names the parent task and step, and each workflow step’s child task', () => {
    const lines: string[] = [];
    printTask(task, (s) => lines.push(s));
    expect(lines[1]).toBe(`child of task ${PARENT}  shop/big_order, step fulfil`);
    expect(lines.at(-1)).toBe(`step charge runs child task ${PARENT.replace('9', 'a')}`);
    expect(lines.filter((l) => l.includes('runs child task'))).toHaveLength(1);
  });

  it('--step shows the child task, or that it has not started', () => {
    const lines: string[] = [];
    printStep(task, task.steps[1]!, (s) => lines.push(s));
    printStep(task, task.steps[2]!, (s) => lines.push(s));
    expect(lines.filter((l) => l.startsWith('  child task'))).toEqual([`  child task   ${PARENT.replace('9', 'a')}`, '  child task   not started']);
  });
});
