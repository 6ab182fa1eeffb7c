/** Shared helpers of the native bridge tests (not a test file). */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixtures = join(repoRoot, 'test', 'native', 'fixtures');

/** The step JSON every SDK reads. */
export function stepPayload(context: unknown = {}, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    task_id: 't-1',
    step_id: 's-1',
    step_name: 'probe_step',
    attempt: 1,
    context,
    inputs: { xs: [1, 2, 3] },
    dependency_results: {},
    batch: null,
    ...extra,
  });
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const live = new Set<ChildProcess>();

/** Kills (by pid) every child still running; call from afterEach. */
export function killChildren(): void {
  for (const c of live) {
    if (c.pid && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  live.clear();
}

/**
 * Runs a fixture script (TypeScript, through tsx) in a fresh node process.
 * `onLine` sees stdout lines as they come (to send signals at the right time).
 */
export function runFixture(
  script: string,
  opts: {
    args?: string[];
    nodeArgs?: string[];
    timeoutMs?: number;
    env?: Record<string, string>;
    unsetEnv?: string[];
    onLine?: (line: string, child: ChildProcess) => void;
  } = {},
): Promise<ChildResult> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', join(fixtures, script), ...(opts.args ?? [])], {
    cwd: repoRoot,
    env: Object.fromEntries(Object.entries({ ...process.env, ...opts.env }).filter(([k]) => !(opts.unsetEnv ?? []).includes(k))),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let stdout = '';
  let stderr = '';
  let pending = '';
  let timedOut = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    pending += d;
    let i: number;
    while ((i = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      opts.onLine?.(line, child);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid) process.kill(child.pid, 'SIGKILL');
  }, opts.timeoutMs ?? 30_000);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      // let the pipes drain
      setImmediate(() => resolve({ code, signal, stdout, stderr, timedOut }));
    });
  });
}

/** The last line of stdout parsed as JSON (fixtures print their findings that way). */
export function lastJson<T = Record<string, unknown>>(r: ChildResult): T {
  const lines = r.stdout.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`fixture did not print JSON; code=${r.code} signal=${r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns something other than undefined/false, or
 * fails after `timeoutMs` naming `what` (tests wait for conditions, never a
 * fixed time).
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
