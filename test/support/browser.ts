import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { packageRoot } from '../../src/shared/paths.js';

export const CHROMIUM = process.env.WEFT_TEST_CHROMIUM ?? '/usr/bin/chromium';

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
 * profile per call (playwright passes it as --user-data-dir). Nothing is downloaded: `scripts/setup.sh` installs the
 * browser with apt-get.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run \`bash scripts/setup.sh\` (it installs Debian's chromium), or set WEFT_TEST_CHROMIUM`);
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
