/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// (page.evaluate callbacks run in the browser)
/**
 * A task's page tells the truth (issue 15): numbers against the budget, each
 * attempt on the timeline, the history of who did what, a DAG that fits,
 * zooms, pans and collapses fan-outs, and the selected step in the URL. In
 * Chromium against a real orchestrator, in-process native workers and
 * `weft worker` processes; every test fails on any console error (a
 * Content-Security-Policy violation included).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchBrowser, screenshot, eventually, type Browser } from '../support/browser.js';
import { FIXTURES, spawnWeft, startDashboard, type Dashboard, type WeftProcess } from './harness.js';
import { getTaskView } from '../../src/store/tasks.js';

/** A lost worker's steps run again after this long without its heartbeat (short, for the lost-worker test). */
const LEASE_MS = 3_000;

describe('a task page in Chromium', () => {
  let d: Dashboard;
  let browser: Browser;
  const spawned: WeftProcess[] = [];

  const create = async (name: string, context: unknown, namespace = 'ui_e2e') => (await d.engine.orchestrators[0]!.createTask({ namespace, name, context })).id;
  const open = async (hash: string, viewport?: { width: number; height: number }): Promise<Page> => {
    const page = await browser.page(viewport);
    await page.goto(`${d.url}/#${hash}`);
    return page;
  };
  const ended = async (id: string) => expect(await d.engine.orchestrators[0]!.waitForTask(id, 30_000)).toBe(true);
  const stepOf = async (id: string, name: string) => (await getTaskView(d.engine.db, id))!.steps.find((s) => s.name === name)!;

  beforeAll(async () => {
    d = await startDashboard({ leaseMs: LEASE_MS });
    browser = await launchBrowser();
  });
  afterEach(() => {
    expect(browser.errors.splice(0), 'console errors in the page').toEqual([]);
  });
  afterAll(async () => {
    await Promise.all(spawned.map((p) => p.stop('SIGKILL')));
    await browser?.close();
    await d?.stop();
  });

  it('counts a batch from 1 and attempts against their budget, with the total across retries of the task', async () => {
    const fan = await create('fan_out', { workers: 5, delay_ms: 0 });
    await ended(fan);
    const page = await open(`/tasks/${fan}?step=work_004`);
    const batch = page.locator('[data-step-panel="work_004"] [data-batch]');
    await batch.waitFor();
    expect(await batch.textContent()).toContain('Batch 4 of 5; cursor {"item":4}');

    // wobbly fails every attempt (2 of a budget of 3 … 3 of 3), then the task is retried and it fails 3 more.
    const id = await create('flaky_chain', { delay_ms: 0, failures: 99 });
    await ended(id);
    await page.goto(`${d.url}/#/tasks/${id}?step=wobbly`);
    const attempts = page.locator('[data-step-panel="wobbly"] [data-attempts]');
    await eventually('the attempts of the first run', async () => (await attempts.textContent()) === '3 of 3 attempts failed');
    await page.getByRole('button', { name: 'Retry task' }).click();
    await page.locator('[data-task-state="running"]').waitFor();
    await page.locator('[data-task-state="error"]').waitFor({ timeout: 20_000 });
    const step = await stepOf(id, 'wobbly');
    expect([step.attempts, step.failures, step.max_attempts]).toEqual([6, 3, 3]);
    await eventually('the attempts after the retry', async () => (await attempts.textContent()) === '3 of 3 attempts failed · 6 runs in all');
    // Every failed attempt's error, both runs of the task's.
    expect(await page.locator('[data-step-panel="wobbly"] .attempts li').count()).toBe(6);
    // The step's history gives each failure with the delay before its retry; the task's names who retried.
    const failures = page.locator('[data-step-panel="wobbly"] tr[data-transition="running>waiting_retry"] .why');
    await eventually('the failures in the step history', async () => (await failures.count()) === 4);
    expect(await failures.allTextContents()).toEqual([1, 2, 4, 5].map((n) => expect.stringMatching(new RegExp(`^attempt ${n} failed; retry in \\d`))));
    await page.locator('[data-history="task"] summary').click();
    const retried = page.locator('[data-history="task"] tr[data-transition="error>running"][data-step-name=""]');
    await retried.waitFor();
    expect(await retried.locator('[data-who]').textContent()).toBe('anonymous');
    expect(await retried.locator('.why').textContent()).toBe('retried');
    await page.close();
  });

  it('draws every attempt on the timeline with the retry backoff between them, times on hover, a legend for every colour, and grows while the task runs', async () => {
    // wobbly fails once, waits 400 ms, succeeds; finish then sleeps 3 s, long enough to watch the timeline grow.
    const id = await create('flaky_chain', { delay_ms: 3_000, failures: 1 });
    const page = await open(`/tasks/${id}`);
    const row = page.locator('[data-wf-step="wobbly"]');
    await row.locator('[data-kind="complete"]').waitFor({ timeout: 20_000 });
    expect(
      await row.locator('[data-kind]').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-kind')}${e.getAttribute('data-attempt') ?? ''}`)),
    ).toEqual(expect.arrayContaining(['failed1', 'retry', 'complete2']));
    const kinds = await row.locator('[data-kind]').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
    expect(kinds.indexOf('failed')).toBeLessThan(kinds.indexOf('retry'));
    expect(kinds.indexOf('retry')).toBeLessThan(kinds.lastIndexOf('complete'));
    const [failedBox, retryBox, okBox] = await Promise.all(
      ['[data-kind="failed"]', '[data-kind="retry"]', '[data-kind="complete"]'].map((k) => row.locator(k).boundingBox()),
    );
    // (A failed attempt may be too short to see: it is drawn a sliver wide, so compare where each starts.)
    expect(failedBox!.x).toBeLessThan(retryBox!.x);
    expect(retryBox!.x + retryBox!.width).toBeLessThanOrEqual(okBox!.x + 1);
    // Exact times on hover.
    expect(await row.locator('[data-kind="failed"]').getAttribute('title')).toMatch(
      /^wobbly: failed attempt, attempt 1 \(\d+(\.\d+)? ms\)\n\d\d:\d\d:\d\d\.\d{3} → \d\d:\d\d:\d\d\.\d{3}\nfrom \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+$/,
    );
    // Running: the bar of `finish` and the axis grow with no event from the server (its step sleeps).
    const finish = page.locator('[data-wf-step="finish"] [data-kind="running"]');
    await finish.waitFor({ timeout: 20_000 });
    const total = page.locator('.wf-scale [data-total]');
    const before = await total.textContent();
    await eventually('the timeline to tick', async () => (await total.textContent()) !== before, 5_000);
    // Every kind of stretch drawn has its line in the legend, and the legend lists every kind.
    const legend = await page.locator('.wf-legend [data-kind]').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
    expect(legend).toEqual(['start', 'parents', 'waiting', 'queue', 'running', 'complete', 'failed', 'retry', 'lost', 'cancelled']);
    const drawn = await page.locator('.wf-track [data-kind]').evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('data-kind')))]);
    for (const k of drawn) expect(legend).toContain(k);
    await page.locator('[data-task-state="complete"]').waitFor({ timeout: 20_000 });
    await screenshot(page, 'task-retried');
    await page.close();
  });

  it('keeps the selected step in the URL: a link opens it, a click on the DAG or the timeline changes it', async () => {
    const id = await create('slow_chain', { delay_ms: 0 });
    await ended(id);
    const page = await open(`/tasks/${id}?step=publish`);
    await page.locator('[data-step-panel="publish"]').waitFor();
    expect(await page.locator('[data-step="publish"]').getAttribute('class')).toContain('selected');
    await page.locator('[data-step="fetch"]').click();
    await page.locator('[data-step-panel="fetch"]').waitFor();
    expect(page.url()).toBe(`${d.url}/#/tasks/${id}?step=fetch`);
    await page.locator('[data-wf-step="transform"] button').click();
    await page.locator('[data-step-panel="transform"]').waitFor();
    expect(page.url()).toBe(`${d.url}/#/tasks/${id}?step=transform`);
    await page.goBack();
    await page.locator('[data-step-panel="fetch"]').waitFor();
    // The step's history, who moved it and why (read once the panel has loaded it).
    await page.locator('[data-step-panel="fetch"] tr[data-transition="running>complete"]').waitFor();
    const moves = await page.locator('[data-step-panel="fetch"] tr[data-transition]').evaluateAll((els) => els.map((e) => e.getAttribute('data-transition')));
    expect(moves[0]).toBe('new>pending');
    expect(moves.at(-1)).toBe('running>complete');
    expect(await page.locator('[data-step-panel="fetch"] tr[data-transition="running>complete"] .why').textContent()).toMatch(/^attempt 1 succeeded in /);
    await page.close();
  });

  it('fits a graph wider than its card at 1280 px, keeps every name inside its node (whole on hover), and zooms, pans and fits', async () => {
    const id = await create('wide_names', { delay_ms: 0 });
    await ended(id);
    const page = await open(`/tasks/${id}`);
    const wrap = page.locator('.dag-wrap');
    await page.locator('[data-step="start"]').waitFor();
    // Nothing scrolls or spills: the canvas is its card's width, and every node is inside it.
    const box = (await wrap.boundingBox())!;
    expect(await wrap.evaluate((el) => el.scrollWidth - el.clientWidth)).toBe(0);
    const nodes = page.locator('.dag-node');
    expect(await nodes.count()).toBe(11);
    for (const b of await nodes.evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON() as DOMRect))) {
      expect(b.left).toBeGreaterThanOrEqual(box.x - 0.5);
      expect(b.right).toBeLessThanOrEqual(box.x + box.width + 0.5);
    }
    // Each label fits its box; the title has the whole name.
    const fits = await nodes.evaluateAll((els) =>
      els.map((g) => {
        const rect = g.querySelector('rect')!.getBBox();
        return [...g.querySelectorAll('text')].every(
          (t) => (t as SVGTextElement).getBBox().x + (t as SVGTextElement).getComputedTextLength() <= rect.width - 4,
        );
      }),
    );
    expect(fits.every(Boolean)).toBe(true);
    const long = page.locator('[data-step="extract_customer_records_from_the_legacy_billing_system"]');
    expect(await long.locator('title').textContent()).toBe('extract_customer_records_from_the_legacy_billing_system (complete)');
    expect(await long.locator('.dag-label').textContent()).toMatch(/^extract_customer_.+…$/);

    const zoom = async () => Number(await page.locator('[data-zoom]').getAttribute('data-zoom'));
    const viewBox = async () => (await page.locator('svg.dag').getAttribute('viewBox'))!.split(' ').map(Number);
    const fitted = await zoom();
    expect(fitted).toBeLessThan(1);
    await page.getByRole('button', { name: 'Zoom in' }).click();
    await page.getByRole('button', { name: 'Zoom in' }).click();
    expect(await zoom()).toBeCloseTo(fitted * 1.25 * 1.25, 3);
    const [x0, y0] = await viewBox();
    // Drag to pan: the view moves against the drag.
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 - 120, box.y + box.height / 2 - 30, { steps: 6 });
    await page.mouse.up();
    const [x1, y1] = await viewBox();
    expect(x1).toBeGreaterThan(x0!);
    expect(y1).toBeGreaterThan(y0!);
    await page.getByRole('button', { name: 'Zoom out' }).click();
    expect(await zoom()).toBeCloseTo(fitted * 1.25, 3);
    await page.getByRole('button', { name: 'Fit' }).click();
    expect(await zoom()).toBeCloseTo(fitted, 3);
    // A drag that started on a node did not select it; a click does.
    expect(page.url()).not.toContain('step=');
    await page.locator('[data-step="start"]').click();
    await page.locator('[data-step-panel="start"]').waitFor();
    await page.close();
  });

  it('collapses a 1000-way fan-out into one node with its tally, its parent in view, and expands it on request', async () => {
    const id = await create('fan_out', { workers: 1000, delay_ms: 0, fail: [500] });
    await ended(id);
    const view = (await getTaskView(d.engine.db, id))!;
    const work = view.steps.filter((s) => s.type === 'batch_worker');
    expect(work).toHaveLength(1000);
    const count = (...states: string[]) => work.filter((s) => states.includes(s.state)).length;
    const page = await open(`/tasks/${id}`);
    const group = page.locator('[data-group="work"]');
    await group.waitFor();
    const tally = [
      [count('complete'), '✓'],
      [count('error'), '✗'],
      [count('pending', 'enqueued', 'waiting_retry'), '…'],
      [count('cancelled'), '⊘'],
    ]
      .filter(([n]) => n)
      .map(([n, mark]) => `${n} ${mark}`)
      .join(' ');
    expect(await group.locator('title').textContent()).toBe(`work ×1000: ${tally} (click to expand)`);
    expect(await group.locator('.dag-label').textContent()).toBe('work ×1000');
    expect(await group.getAttribute('data-state')).toBe('error');
    expect(await page.locator('.dag-node').count()).toBe(3);
    // The parent and the join are on screen, inside the canvas.
    const box = (await page.locator('.dag-wrap').boundingBox())!;
    for (const name of ['split', 'gather']) {
      const b = (await page.locator(`[data-step="${name}"]`).boundingBox())!;
      expect(b.x).toBeGreaterThanOrEqual(box.x);
      expect(b.x + b.width).toBeLessThanOrEqual(box.x + box.width);
      expect(b.y).toBeGreaterThanOrEqual(box.y);
      expect(b.y + b.height).toBeLessThanOrEqual(box.y + box.height);
    }
    await screenshot(page, 'dag-fanout');
    await group.click();
    await eventually('the fan-out expanded', async () => (await page.locator('[data-step^="work_"]').count()) === 1000, 20_000);
    // Expanded, the parent is still in view at the top.
    const split = (await page.locator('[data-step="split"]').boundingBox())!;
    expect(split.y).toBeGreaterThanOrEqual(box.y);
    expect(split.x + split.width).toBeLessThanOrEqual(box.x + box.width);
    await page.getByRole('button', { name: 'Collapse work ×1000' }).click();
    await eventually('the fan-out collapsed', async () => (await page.locator('.dag-node').count()) === 3);
    await page.close();
  });

  it("shows in the history that a step's worker was lost, that it was queued again with no attempt used, and the run that completed it", async () => {
    const env = { WEFT_DATABASE_URL: d.tdb.url, WEFT_MESSAGING: 'pg', WEFT_POLL_INTERVAL_MS: '200' };
    const args = ['worker', '--runtime', 'native', '--handlers', `${FIXTURES}/handlers/native`, '--namespaces', 'ui_lost'];
    const first = spawnWeft(args, env);
    spawned.push(first);
    const id = await create('hang', {}, 'ui_lost');
    await eventually('the step to run on the first worker', async () => (await stepOf(id, 'stuck')).state === 'running', 45_000, 100);
    const lostWorker = (await stepOf(id, 'stuck')).worker_id!;
    await first.stop('SIGKILL');
    await eventually("the lost worker's step to be queued again", async () => (await stepOf(id, 'stuck')).state === 'enqueued', 30_000, 100);
    const second = spawnWeft(args, env);
    spawned.push(second);
    await ended(id);
    expect(await stepOf(id, 'stuck')).toMatchObject({ state: 'complete', attempts: 2, failures: 0, losses: 1 });

    const page = await open(`/tasks/${id}?step=stuck`);
    const lost = page.locator('[data-step-panel="stuck"] tr[data-transition="running>enqueued"]');
    await lost.waitFor();
    expect(await lost.locator('.why').textContent()).toBe(`its worker ${lostWorker} was lost (loss 1); queued again, no attempt used`);
    expect(await page.locator('[data-step-panel="stuck"] [data-attempts]').textContent()).toBe(
      'succeeded on attempt 1 of 3 · 2 runs in all, 1 lost with its worker',
    );
    // On the timeline: the lost run, then the one that completed.
    const kinds = await page.locator('[data-wf-step="stuck"] [data-kind]').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
    expect(kinds).toEqual(['queue', 'lost', 'queue', 'complete']);
    await page.close();
    await second.stop();
  });
});
