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
});
