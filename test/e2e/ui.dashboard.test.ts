/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// (page.evaluate callbacks run in the browser)
/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core)
 * against a real orchestrator, native workers in this process and `weft
 * worker` processes, on a fresh database. Every test fails on any console
 * error or uncaught exception in the page.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchBrowser, screenshot, eventually, type Browser } from '../support/browser.js';
import { FIXTURES, spawnWeft, startDashboard, type Dashboard, type WeftProcess } from './harness.js';
import { getTaskView } from '../../src/store/tasks.js';

/** Scroll the page so that `selector` starts just below the sticky header (for a screenshot of it). */
const scrollTo = (page: Page, selector: string) =>
  page.evaluate((sel) => window.scrollTo(0, document.querySelector(sel)!.getBoundingClientRect().top + window.scrollY - 60), selector);

describe('dashboard in Chromium', () => {
  let d: Dashboard;
  let browser: Browser;
  const spawned: WeftProcess[] = [];

  const create = async (name: string, context: unknown) => (await d.engine.orchestrators[0]!.createTask({ namespace: 'ui_e2e', name, context })).id;
  const open = async (hash: string, viewport?: { width: number; height: number }): Promise<Page> => {
    const page = await browser.page(viewport);
    await page.goto(`${d.url}/#${hash}`);
    return page;
  };
  const taskCount = async () => (await d.engine.db.query<{ n: number }>('SELECT count(*)::int AS n FROM weft.tasks')).rows[0]!.n;
  const workerEnv = () => ({ WEFT_DATABASE_URL: d.tdb.url, WEFT_MESSAGING: 'pg', WEFT_POLL_INTERVAL_MS: '200' });

  beforeAll(async () => {
    d = await startDashboard();
    browser = await launchBrowser({ timezoneId: 'Asia/Kolkata' });
  });
  afterEach(() => {
    const errors = browser.errors.splice(0);
    expect(errors, 'console errors in the page').toEqual([]);
  });
  afterAll(async () => {
    await Promise.all(spawned.map((p) => p.stop()));
    await browser?.close();
    await d?.stop();
  });

  it('lists tasks with counts by state; a new task appears when created and turns complete live, without a reload or moving the layout', async () => {
    const done = await create('slow_chain', { delay_ms: 0 });
    await d.engine.orchestrators[0]!.waitForTask(done, 20_000);
    const page = await open('/tasks');
    await page.locator(`tr[data-task="${done}"] [data-state="complete"]`).waitFor();
    await page.evaluate(() => ((window as any).__marker = 'no reload'));
    // A task created after the page loaded shows up, running, while it runs (the steps take 3 × 2 s).
    const live = await create('slow_chain', { delay_ms: 2_000 });
    await page.locator(`tr[data-task="${live}"] [data-state="running"]`).waitFor({ timeout: 10_000 });
    expect((await getTaskView(d.engine.db, live))!.state).toBe('running');
    expect(await page.evaluate(() => (window as any).__marker)).toBe('no reload');
    // Count layout shifts from here on: the live update must not move anything.
    await page.evaluate(() => {
      (window as any).__shift = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries() as any[]) if (!e.hadRecentInput) (window as any).__shift += e.value;
      }).observe({ type: 'layout-shift' as any, buffered: false });
    });
    await page.locator(`tr[data-task="${live}"] [data-state="complete"]`).waitFor({ timeout: 20_000 });
    await eventually('the complete count to include both tasks', async () => (await page.locator('[data-count="complete"] b').textContent()) === '2');
    expect(await page.evaluate(() => (window as any).__marker)).toBe('no reload');
    expect(await page.evaluate(() => (window as any).__shift)).toBeLessThan(0.001);
    await screenshot(page, 'tasks');
    await page.close();
  });

  it('creates a task from the form: refuses a bad context naming the field, then its DAG goes green live', async () => {
    const page = await open('/new?template=ui_e2e/slow_chain');
    const editor = page.getByLabel('Context (JSON)');
    await eventually('the example context', async () => (await editor.inputValue()).includes('delay_ms'));
    const before = await taskCount();
    await editor.fill('{ "delay_ms": "soon" }');
    await page.getByRole('button', { name: 'Create task' }).click();
    const problem = page.locator('li[data-path="context.delay_ms"]');
    await problem.waitFor();
    expect(await problem.textContent()).toContain('context.delay_ms must be integer');
    await screenshot(page, 'new-task-refused');
    expect(await taskCount()).toBe(before);

    await editor.fill('{ "delay_ms": 700 }');
    await page.getByRole('button', { name: 'Create task' }).click();
    await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').pop()!;
    await page.evaluate(() => ((window as any).__marker = 'no reload'));
    // Step by step, live: the first step completes while the last has not.
    await page.locator('[data-step="fetch"][data-state="complete"]').waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-step="publish"]').getAttribute('data-state')).not.toBe('complete');
    await page.locator('[data-step="publish"][data-state="complete"]').waitFor({ timeout: 20_000 });
    await page.locator('[data-task-state="complete"]').waitFor();
    expect(await page.evaluate(() => (window as any).__marker)).toBe('no reload');
    expect((await getTaskView(d.engine.db, id))!.state).toBe('complete');
    await page.locator('[data-step="transform"]').click();
    await page.locator('[data-step-panel="transform"]').waitFor();
    expect(await page.getByLabel('Result').textContent()).toContain('"slept_ms": 700');
    await screenshot(page, 'task');
    await page.close();
  });

  it('opens a failed Python step and reads its error and backtrace', async () => {
    const worker = spawnWeft(['worker', '--runtime', 'python', '--handlers', `${FIXTURES}/handlers/python`, '--namespaces', 'ui_e2e'], workerEnv());
    spawned.push(worker);
    const id = await create('python_fails', { delay_ms: 0 });
    const ended = await d.engine.orchestrators[0]!.waitForTask(id, 45_000);
    expect(ended, `task did not end; worker output:\n${worker.output()}`).toBe(true);
    const page = await open(`/tasks/${id}`);
    await page.locator('[data-task-state="error"]').waitFor();
    await page.locator('[data-step="explode"][data-state="error"]').click();
    const panel = page.locator('[data-step-panel="explode"]');
    await panel.waitFor();
    expect(await panel.locator('.err-class').first().textContent()).toBe('LookupError');
    expect(await panel.locator('.err-message').first().textContent()).toBe('sku A-42 is not in the warehouse');
    const trace = panel.locator('details.backtrace').first();
    expect(await trace.locator('pre').isVisible()).toBe(false);
    await trace.locator('summary').click();
    expect(await trace.locator('pre').textContent()).toContain('check_inventory');
    await scrollTo(page, '[data-step-panel="explode"]');
    await screenshot(page, 'python-backtrace');
    await page.close();
    await worker.stop();
  });

  it('shows templates with their DAG, throughput and benchmarks, at 1280×800 and in a narrow window', async () => {
    const id = await create('slow_chain', { delay_ms: 0 });
    expect(await d.engine.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
    const page = await open('/templates/ui_e2e/slow_chain');
    await page.locator('[data-step="publish"]').waitFor();
    await screenshot(page, 'template');
    await page.goto(`${d.url}/#/stats`);
    await page.getByRole('heading', { name: 'Throughput and latency' }).waitFor();
    await page.locator('table[aria-label="Queue wait and run time by runtime"] td', { hasText: 'native' }).first().waitFor();
    await screenshot(page, 'throughput');
    await page.goto(`${d.url}/#/bench`);
    await page.getByRole('heading', { name: 'Bridge: cost of one call per language' }).waitFor();
    await screenshot(page, 'benchmarks');
    await page.close();

    const narrow = await open('/tasks', { width: 390, height: 800 });
    await narrow.locator('tr[data-task]').first().waitFor();
    const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot(narrow, 'tasks-narrow');
    await narrow.close();
  });

  it('gives every control an accessible name', async () => {
    for (const hash of ['/tasks', '/new', '/workers', '/stats']) {
      const page = await open(hash);
      await page.locator('main h1').waitFor();
      const unnamed = await page.evaluate(() =>
        [...document.querySelectorAll('button, a[href], input, select, textarea, [role="button"]')]
          .filter((el) => {
            const e = el as HTMLElement;
            const labelled =
              e.getAttribute('aria-label') ||
              e.getAttribute('aria-labelledby') ||
              (e as HTMLInputElement).labels?.length ||
              e.textContent?.trim() ||
              e.getAttribute('title');
            return !labelled;
          })
          .map((el) => el.outerHTML.slice(0, 80)),
      );
      expect(unnamed, hash).toEqual([]);
      await page.close();
    }
  });

  it('shows workers as the registry describes them: heartbeat, in-flight, counts, breaker, bridge histograms; a silent one as stopped', async () => {
    // Rows in the shape workers will write (see src/store/processes.ts), kept fresh here like a worker would.
    const hist = (counts: number[]) => ({
      upperBoundsUs: counts.map((_, i) => 2 ** i),
      counts,
      count: counts.reduce((a, b) => a + b, 0),
      sumNs: 40_000 * counts.length,
    });
    const bridge = {
      dispatched: 120,
      completed: 117,
      failed: 3,
      timedOut: 0,
      rejectedByBreaker: 0,
      rejectedQueueFull: 0,
      inFlight: 2,
      lateResults: 0,
      breaker: { state: 'closed', consecutiveFailures: 0, timesOpened: 1 },
      broken: false,
      brokenReason: '',
      phase: 'ready',
      histograms: { serialise: hist([0, 40, 70, 10]), queueWait: hist([0, 5, 60, 50, 5]), run: hist([0, 0, 10, 60, 40, 10]), return: hist([0, 30, 80, 10]) },
    };
    const info = (runtime: string) => ({
      namespaces: ['ui_e2e'],
      concurrency: 8,
      in_flight: 2,
      counts: { claimed: 120, succeeded: 117, failed: 3, retried: 2, lost: 0 },
      ...(runtime === 'python' ? { bridge } : {}),
    });
    await d.engine.db.query(
      `INSERT INTO weft.processes (id, kind, runtime, host, pid, started_at, heartbeat_at, info) VALUES
         ('worker-ui-python', 'worker', 'python', 'ui-host', 4242, now() - interval '5 minutes', now(), $1),
         ('worker-ui-gone', 'worker', 'native', 'ui-host', 4343, now() - interval '9 minutes', now() - interval '1 minute', $2)`,
      [info('python'), info('native')],
    );
    const beat = setInterval(
      () => void d.engine.db.query(`UPDATE weft.processes SET heartbeat_at = now() WHERE id = 'worker-ui-python'`).catch(() => undefined),
      500,
    );
    try {
      const page = await open('/workers');
      const live = page.locator('tr[data-worker="worker-ui-python"]');
      await live.waitFor();
      expect(await live.getAttribute('data-stale')).toBe('false');
      expect(await live.textContent()).toContain('117 ok · 3 failed · 2 retried · 0 lost');
      const gone = page.locator('tr[data-worker="worker-ui-gone"]');
      expect(await gone.getAttribute('data-stale')).toBe('true');
      expect(await gone.textContent()).toContain('stopped heartbeating');
      const panel = page.locator('[data-bridge="python"]');
      expect(await panel.locator('[data-breaker]').textContent()).toBe('closed');
      expect(await panel.locator('table[aria-label="python bridge latency by phase"] tbody tr').count()).toBe(4);
      await panel.locator('figure.chart canvas').waitFor();
      await screenshot(page, 'workers');
      await page.close();
    } finally {
      clearInterval(beat);
      await d.engine.db.query(`DELETE FROM weft.processes WHERE id IN ('worker-ui-python', 'worker-ui-gone')`);
    }
  });

  // Waits for the engine: weft.processes rows written by workers (see the report).
  it('shows a live worker, and shows it stopped when it is killed', async () => {
    const worker = spawnWeft(['worker', '--runtime', 'native', '--handlers', 'handlers/typescript', '--namespaces', 'e2e_linear'], workerEnv());
    spawned.push(worker);
    const page = await open('/workers');
    const row = page.locator(`tr[data-pid="${worker.pid}"]`);
    await row.waitFor({ timeout: 30_000 });
    expect(await row.getAttribute('data-stale')).toBe('false');
    await screenshot(page, 'workers');
    await worker.stop('SIGKILL');
    await eventually(
      'the killed worker to show as stopped or be gone',
      async () => (await row.count()) === 0 || (await row.getAttribute('data-stale')) === 'true',
      30_000,
      250,
    );
    await page.close();
  });

  it('cancels a long task only after confirming, keeps the reason in its history, and offers to retry it', async () => {
    const id = await create('slow_chain', { delay_ms: 15_000 });
    const page = await open(`/tasks/${id}`);
    await page.locator('[data-task-state="running"]').waitFor();
    // Changing one's mind cancels nothing.
    await page.getByRole('button', { name: 'Cancel task' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Keep it running' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect((await getTaskView(d.engine.db, id))!.state).toBe('running');

    await page.getByRole('button', { name: 'Cancel task' }).click();
    await dialog.getByLabel('Reason').fill('wrong customer selected');
    await dialog.getByRole('button', { name: 'Cancel the task' }).click();
    await page.locator('[data-task-state="cancelled"]').waitFor({ timeout: 20_000 });
    expect((await getTaskView(d.engine.db, id))!.state).toBe('cancelled');
    expect(await page.locator('[data-cancelled]').textContent()).toContain('Cancelled by anonymous: wrong customer selected');

    // The history says who cancelled and why, beside the steps it stopped.
    await page.locator('[data-history="task"] summary').click();
    const row = page.locator('[data-history="task"] tr[data-transition="running>cancelled"][data-step-name=""]');
    await row.waitFor();
    expect(await row.locator('[data-who]').textContent()).toBe('anonymous');
    expect(await row.locator('.why').textContent()).toBe('cancelled: wrong customer selected');
    expect(await page.locator('[data-history="task"] tr[data-step-name="fetch"][data-transition="running>cancelled"] .why').textContent()).toBe(
      'task cancelled',
    );
    await scrollTo(page, '[data-cancelled]');
    await screenshot(page, 'task-cancelled');

    // A cancelled task can run again.
    await page.getByRole('button', { name: 'Retry task' }).click();
    await page.locator('[data-task-state="running"]').waitFor({ timeout: 20_000 });
    await page.locator('[data-history="task"] tr[data-transition="cancelled>running"]').waitFor();
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await dialog.getByRole('button', { name: 'Cancel the task' }).click();
    await page.locator('[data-task-state="cancelled"]').waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-cancelled]').textContent()).toContain('(no reason given)');
    await page.close();
  });

  it('says in the list where and why each failed or cancelled task stopped', async () => {
    const failed = await create('flaky_chain', { delay_ms: 0, failures: 99 });
    expect(await d.engine.orchestrators[0]!.waitForTask(failed, 20_000)).toBe(true);
    const cancelled = await create('slow_chain', { delay_ms: 15_000 });
    await d.engine.orchestrators[0]!.cancelTask(cancelled, 'token:ops', 'superseded by a newer import');
    const page = await open('/tasks');
    const failure = page.locator(`tr[data-task="${failed}"] [data-error]`);
    await failure.waitFor();
    expect(await failure.textContent()).toBe('at wobbly: InventoryError: sku A-42 is not in the warehouse (attempt 3) (attempts exhausted (3 of 3))');
    expect(await page.locator(`tr[data-task="${cancelled}"] [data-error]`).textContent()).toBe('cancelled by token:ops: superseded by a newer import');
    expect(await page.locator(`tr[data-task] [data-state="complete"]`).first().locator('xpath=ancestor::tr').locator('[data-error]').count()).toBe(0);
    await page.close();
  });

  it('names every page in its title, and shows times with their zone, how long ago, and in UTC on request', async () => {
    const id = await create('slow_chain', { delay_ms: 0 });
    expect(await d.engine.orchestrators[0]!.waitForTask(id, 20_000)).toBe(true);
    const titles: Array<[string, string]> = [
      ['/tasks', 'Tasks · weft'],
      ['/new', 'New task · weft'],
      ['/templates', 'Templates · weft'],
      ['/templates/ui_e2e/slow_chain', 'Template ui_e2e/slow_chain · weft'],
      ['/workers', 'Workers · weft'],
      ['/stats', 'Throughput · weft'],
      ['/bench', 'Benchmarks · weft'],
      [`/tasks/${id}`, `Task ui_e2e/slow_chain ${id.slice(0, 8)}…${id.slice(-4)} · weft`],
      [`/tasks/${id}?step=transform`, `Task ui_e2e/slow_chain ${id.slice(0, 8)}…${id.slice(-4)} · transform · weft`],
    ];
    const page = await open('/tasks');
    for (const [hash, title] of titles) {
      await page.goto(`${d.url}/#${hash}`);
      await eventually(`the title of ${hash}`, async () => (await page.title()) === title, 10_000);
    }

    // The browser runs in Asia/Kolkata (UTC+5:30): local times name that zone; the switch shows UTC.
    await page.goto(`${d.url}/#/tasks/${id}`);
    const created = (await getTaskView(d.engine.db, id))!.created_at;
    const shown = page.locator('.facts time').first();
    await shown.waitFor();
    const local = new Date(created.getTime() + 5.5 * 3600_000).toISOString();
    expect(await shown.textContent()).toBe(`${local.slice(0, 10)} ${local.slice(11, 19)} GMT+5:30`);
    expect(await shown.getAttribute('title')).toBe(
      `${created.toISOString().slice(0, 10)} ${created.toISOString().slice(11, 23)} UTC · ${local.slice(0, 10)} ${local.slice(11, 23)} GMT+5:30`,
    );
    expect(await page.locator('.facts .rel').first().textContent()).toMatch(/^\((just now|\d+ s ago)\)$/);
    await page.getByRole('button', { name: 'UTC' }).click();
    expect(await shown.textContent()).toBe(`${created.toISOString().slice(0, 10)} ${created.toISOString().slice(11, 19)} UTC`);
    // The choice is kept in this browser.
    await page.reload();
    await page.locator('.facts time').first().waitFor();
    expect(await page.locator('.facts time').first().textContent()).toMatch(/ UTC$/);
    await page.getByRole('button', { name: 'local' }).click();
    expect(await page.locator('.facts time').first().textContent()).toMatch(/ GMT\+5:30$/);
    await page.close();
  });

  // Waits for the engine: retryTask in src/store/control.ts.
  it('retries a failed step from its page', async () => {
    const worker = spawnWeft(['worker', '--runtime', 'python', '--handlers', `${FIXTURES}/handlers/python`, '--namespaces', 'ui_e2e'], workerEnv());
    spawned.push(worker);
    const id = await create('python_fails', { delay_ms: 0 });
    expect(await d.engine.orchestrators[0]!.waitForTask(id, 45_000)).toBe(true);
    const attempts = (await getTaskView(d.engine.db, id))!.steps.find((s) => s.name === 'explode')!.attempts;
    const page = await open(`/tasks/${id}`);
    await page.locator('[data-step="explode"]').click();
    await page.getByRole('button', { name: 'Retry step' }).click();
    await page.getByText('Retry step explode: done').waitFor({ timeout: 20_000 });
    await eventually(
      'the step to run again',
      async () => (await getTaskView(d.engine.db, id))!.steps.find((s) => s.name === 'explode')!.attempts > attempts,
      45_000,
    );
    await page.close();
    await worker.stop();
  });
});
