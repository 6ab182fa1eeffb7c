/// <reference lib="dom" />
/**
 * A waiting step in the dashboard (issue 19): a `wait` step shows that it
 * waits and until when, and a writer approves it from the form its
 * payload_schema makes (templates/human_approval.yaml: Approve / Reject and a
 * comment); the decision after it then routes on the answer. The timeline
 * draws a wait and a delayed start; a workflow step links to its child task
 * and the child back to its parent's step (templates/order_flow.yaml). In Chromium
 * against a real orchestrator and native workers; fails on any console error.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, eventually, type Browser } from '../support/browser.js';
import { startDashboard, type Dashboard } from './harness.js';
import { getTaskView } from '../../src/store/tasks.js';

describe('a waiting step in Chromium', () => {
  let d: Dashboard;
  let browser: Browser;

  beforeAll(async () => {
    // templates/ (human_approval among them) is registered by every test engine.
    d = await startDashboard({ namespaces: ['e2e_waits', 'e2e_single', 'shop'] });
    browser = await launchBrowser();
  });
  afterEach(() => {
    expect(browser.errors.splice(0), 'console errors in the page').toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    await d?.stop();
  });

  it('shows the deadline, and Approve with a comment completes the step; the decision routes on it', async () => {
    const orch = d.engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'e2e_waits', name: 'human_approval', context: { amount: 120, requester: 'ada' } });
    await eventually(
      'manager_approval waiting',
      async () => (await getTaskView(d.engine.db, id))!.steps.find((s) => s.name === 'manager_approval')!.state === 'waiting',
    );
    const page = await browser.page();
    await page.goto(`${d.url}/#/tasks/${id}?step=manager_approval`);
    const panel = page.locator('[data-step-panel="manager_approval"]');
    await panel.locator('[data-signal-form]').waitFor();
    expect(await panel.locator('dt', { hasText: 'Times out' }).count()).toBe(1);
    await panel.locator('input[name="comment"]').fill('within budget');
    await panel.locator('[data-approve]').click();
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const done = (await getTaskView(d.engine.db, id))!;
    expect(done.state).toBe('complete');
    expect(done.steps.find((s) => s.name === 'manager_approval')!.result).toEqual({ approved: true, comment: 'within budget' });
    expect(done.steps.map((s) => s.name).sort()).toEqual(['fulfil', 'manager_approval', 'request', 'routing']);
    await panel.locator('[data-signal-form]').waitFor({ state: 'detached', timeout: 20_000 });
    // On the timeline the approval's wait is a stretch of its own (then the signal's instant completion); the root step, queued as it was created, waited for nothing.
    const kindsOf = (step: string) => page.locator(`[data-wf-step="${step}"] [data-kind]`).evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
    await eventually('the timeline to show the wait', async () => (await kindsOf('manager_approval')).includes('waiting'));
    expect(await kindsOf('manager_approval')).toEqual(['parents', 'waiting', 'complete']);
    expect(await kindsOf('request')).toEqual(['queue', 'complete']);
    await page.close();
  });

  it("draws a delayed task's wait for its start time before its root step's queue and run", async () => {
    const orch = d.engine.orchestrators[0]!;
    const { id } = await orch.createTask({ namespace: 'e2e_single', name: 'one_step', context: { even_number: 4 }, delay: '1500ms' });
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const page = await browser.page();
    await page.goto(`${d.url}/#/tasks/${id}`);
    const track = page.locator('.wf-track [data-kind]');
    await track.first().waitFor();
    expect(await track.evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')))).toEqual(['start', 'queue', 'complete']);
    const title = (await page.locator('.wf-track [data-kind="start"]').getAttribute('title'))!;
    const waited = /^square: waiting for the task's start time \((\d+\.\d\d) s\)/.exec(title);
    expect(waited, title).not.toBeNull();
    // From the step's creation to its queueing, which came no earlier than the task's run_at.
    const view = (await getTaskView(d.engine.db, id))!;
    const untilStart = (view.run_at!.getTime() - view.steps[0]!.created_at.getTime()) / 1000;
    expect(untilStart).toBeGreaterThan(1.3);
    expect(Number(waited![1])).toBeGreaterThanOrEqual(Math.floor(untilStart * 100) / 100);
    await page.close();
  });

  it("links a workflow step to its child task and the child back to its parent's step", async () => {
    const orch = d.engine.orchestrators[0]!;
    const context = { order_id: 'UI-1', items: [{ sku: 'tea', price: 2, qty: 3 }], card_token: 'tok_visa' };
    const { id } = await orch.createTask({ namespace: 'shop', name: 'order_flow', context });
    expect(await orch.waitForTask(id, 20_000)).toBe(true);
    const childId = (await getTaskView(d.engine.db, id))!.steps.find((s) => s.name === 'charge')!.child_task_id!;
    const page = await browser.page();
    await page.goto(`${d.url}/#/tasks/${id}?step=charge`);
    // On the DAG the step names the template it runs (and no runtime: it runs no handler).
    expect(await page.locator('[data-step="charge"] .dag-sub').textContent()).toMatch(/^↳ charge_card · \d/);
    const link = page.locator('[data-step-panel="charge"] [data-child] a');
    await link.waitFor();
    expect(await link.textContent()).toBe(`shop/charge_card@1.0.0 ${childId.slice(0, 8)}…${childId.slice(-4)}`);
    await link.click();
    const back = page.locator('[data-parent] a');
    await back.waitFor();
    expect(page.url()).toContain(`#/tasks/${childId}`);
    expect(await page.locator('[data-parent]').textContent()).toMatch(/^shop\/order_flow \S+, step charge$/);
    await back.click();
    await page.locator('[data-step-panel="charge"]').waitFor();
    expect(page.url()).toContain(`#/tasks/${id}?step=charge`);
    await page.close();
  });
});
