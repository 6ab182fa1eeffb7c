import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { packageRoot } from '../../src/shared/paths.js';

export const CHROMIUM = process.env.WEFT_TEST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * The strictest Content-Security-Policy the dashboard must work under:
 * every script, style, image and connection from its own origin, nothing
 * inline, no eval. The browser tests serve the page with it (beside the
 * policy the server sends), so anything either blocks is a console error
 * and fails the test.
 */
export const STRICT_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export interface Browser {
  context: BrowserContext;
  /** A new page at 1280×800 (or `viewport`) that records console errors and uncaught exceptions. */
  page(viewport?: { width: number; height: number }): Promise<Page>;
  /** Every console error and page error seen so far, on any page. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * Debian's Chromium, headless, driven by playwright-core, with a fresh
 * profile per call (playwright passes it as --user-data-dir), serving the
 * dashboard under {@link STRICT_CSP}. `timezoneId` sets the browser's zone
 * (default: the machine's). Nothing is downloaded: `scripts/setup-dev.sh`
 * installs the browser with apt-get.
 */
export async function launchBrowser(opts: { timezoneId?: string } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run \`npm run setup:dev\` (it installs Debian's chromium), or set WEFT_TEST_CHROMIUM`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'weft-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
    timezoneId: opts.timezoneId,
  });
  // The page itself (`/` of a loopback server) gets the strict policy beside the server's own (a
  // comma joins policies, and the browser enforces each); what it loads is checked against both.
  await context.route(/^http:\/\/127\.0\.0\.1:\d+\/(\?[^#]*)?$/, async (route) => {
    const response = await route.fetch();
    const served = response.headers()['content-security-policy'];
    await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': served ? `${served}, ${STRICT_CSP}` : STRICT_CSP } });
  });
  const errors: string[] = [];
  return {
    context,
    errors,
    async page(viewport) {
      const page = await context.newPage();
      if (viewport) await page.setViewportSize(viewport);
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`);
      });
      page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
      return page;
    },
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Where screenshots go: docs/screenshots/ when WEFT_SCREENSHOTS=docs (to
 * refresh the README's pictures), else a temporary directory, so a test run
 * leaves the working tree as it found it.
 */
export function screenshotDir(): string {
  const dir = process.env.WEFT_SCREENSHOTS === 'docs' ? join(packageRoot(), 'docs', 'screenshots') : join(tmpdir(), `weft-screenshots-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(screenshotDir(), `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/** Poll `check` until it returns a value other than undefined/false, or fail after `timeoutMs` naming `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
