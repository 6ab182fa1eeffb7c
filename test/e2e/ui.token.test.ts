/** The dashboard when the API requires a token: a clear token screen, never a blank page. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, type Browser } from '../support/browser.js';
import { startDashboard, type Dashboard } from './harness.js';
import { createToken } from '../../src/store/tokens.js';

describe('dashboard with API tokens', () => {
  let d: Dashboard;
  let browser: Browser;

  beforeAll(async () => {
    d = await startDashboard();
    browser = await launchBrowser();
  });
  afterEach(() => {
    expect(browser.errors.splice(0), 'console errors in the page').toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    await d?.stop();
  });

  it('asks for the token, refuses a wrong one, and works with the right one', async () => {
    const token = await createToken(d.engine.db, 'ui-browser', ['read']);
    const page = await browser.page();
    await page.goto(`${d.url}/`);
    await page.getByRole('heading', { name: 'Token required' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('.token-card').textContent()).toContain('This weft API requires a bearer token.');
    await screenshot(page, 'token-required');

    await page.getByLabel('API token').fill('weft_not-a-real-token');
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByText('That token is unknown or revoked.').waitFor();

    await page.getByLabel('API token').fill(token.token);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    await page.locator('[data-count="complete"] b', { hasText: '0' }).waitFor();
    expect(await page.locator('header .who').textContent()).toContain('ui-browser');

    // The token is remembered: a reload goes straight to the data.
    await page.reload();
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    await page.close();
  });

  it('offers only what the token allows, and the history names the token that cancelled', async () => {
    const reader = await createToken(d.engine.db, 'ui-reader', ['read']);
    const writer = await createToken(d.engine.db, 'ui-writer', ['write']);
    const { id } = await d.engine.orchestrators[0]!.createTask({ namespace: 'ui_e2e', name: 'slow_chain', context: { delay_ms: 15_000 } });
    const page = await browser.page();
    const useToken = async (token: string, state = 'running') => {
      await page.goto(`${d.url}/#/tasks/${id}`);
      await page.evaluate((t) => localStorage.setItem('weft.token', t), token);
      await page.reload();
      await page.locator(`[data-task-state="${state}"]`).waitFor();
    };

    // read: the task and its history, but no New task, no Cancel.
    await useToken(reader.token);
    expect(await page.locator('[data-read-only]').textContent()).toBe('This token may only read: no cancel or retry.');
    expect(await page.getByRole('button', { name: 'Cancel task' }).count()).toBe(0);
    expect(await page.locator('header nav a', { hasText: 'New task' }).count()).toBe(0);
    await page.goto(`${d.url}/#/tasks`);
    await page.locator(`tr[data-task="${id}"]`).waitFor();
    expect(await page.locator('main a', { hasText: 'New task' }).count()).toBe(0);

    // write: cancel, and the audit trail says which token did it.
    await useToken(writer.token);
    expect(await page.locator('header nav a', { hasText: 'New task' }).count()).toBe(1);
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await page.getByRole('dialog').getByLabel('Reason').fill('duplicate of another run');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel the task' }).click();
    await page.locator('[data-task-state="cancelled"]').waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-cancelled]').textContent()).toContain('Cancelled by token:ui-writer: duplicate of another run');
    await page.locator('[data-history="task"] summary').click();
    const row = page.locator('[data-history="task"] tr[data-transition="running>cancelled"][data-step-name=""]');
    await row.waitFor();
    expect(await row.locator('[data-who]').textContent()).toBe('token:ui-writer');
    // A cancelled task may be retried, by a token that may write.
    expect(await page.getByRole('button', { name: 'Retry task' }).count()).toBe(1);
    await useToken(reader.token, 'cancelled');
    expect(await page.getByRole('button', { name: 'Retry task' }).count()).toBe(0);
    await page.close();
  });
});
