/// <reference lib="dom" />
/**
 * The dashboard's schedules page in Chromium: it lists each schedule's next
 * firings as the API computes them, and pauses one with the API's own call.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, eventually, type Browser } from '../support/browser.js';
import { startDashboard, type Dashboard } from './harness.js';

describe('schedules page in Chromium', () => {
  let d: Dashboard;
  let browser: Browser;

  beforeAll(async () => {
    d = await startDashboard();
    browser = await launchBrowser({ timezoneId: 'UTC' });
  });
  afterEach(() => {
    expect(browser.errors.splice(0), 'console errors in the page').toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    await d?.stop();
  });

  it('lists next firings and pauses a schedule', async () => {
    const { schedule } = await d.engine.orchestrators[0]!.schedules.save(
      { name: 'weekday-morning', template: 'ui_e2e/slow_chain', cron: '0 9 * * MON-FRI', timezone: 'Europe/Berlin', context: { delay_ms: 0 } },
      { actor: 'test' },
    );
    const page = await browser.page();
    await page.goto(`${d.url}/#/schedules`);
    const row = page.locator('tr[data-schedule="weekday-morning"]');
    await row.waitFor();
    const shown = await row.locator('.next-firings time').evaluateAll((ts) => ts.map((t) => t.getAttribute('datetime')));
    expect(shown).toEqual(schedule.next_firings.slice(0, 3).map((t) => new Date(t).toISOString()));
    expect(await row.textContent()).toContain('Europe/Berlin');
    await row.getByRole('button', { name: 'Pause' }).click();
    await row.locator('.badge', { hasText: 'paused' }).waitFor();
    await eventually('the schedule paused in the database', async () => (await d.engine.orchestrators[0]!.schedules.get('weekday-morning')).paused);
    expect(await page.title()).toBe('Schedules · weft');
    await page.close();
  });
});
