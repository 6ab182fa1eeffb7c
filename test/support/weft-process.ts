import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/shared/paths.js';

export interface WeftProcess {
  pid: number;
  child: ChildProcess;
  output(): string;
  /** SIGTERM (or `signal`) this process by its pid and wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** The real `weft` CLI as a child process against the test database. */
export function spawnWeft(args: string[], env: Record<string, string>): WeftProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: packageRoot(),
    env: { ...process.env, WEFT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid!,
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid!, signal);
        } catch {
          /* already gone */
        }
        const killer = setTimeout(() => {
          try {
            process.kill(child.pid!, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, 10_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}

export interface WeftRun {
  pid: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real `weft` CLI to its end (SIGTERM after `killAfterMs`): its exit code and output. */
export async function runWeft(args: string[], env: NodeJS.ProcessEnv, killAfterMs: number): Promise<WeftRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(packageRoot(), 'src/cli/main.ts'), ...args], {
    cwd: packageRoot(),
    env: { ...process.env, WEFT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGTERM'), killAfterMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { pid: child.pid!, code, stdout, stderr };
}

/** What a finished command printed, and its exit code (null when killed). */
export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to its end (SIGKILL after `timeoutMs`), its output kept apart. */
export async function runCommand(cmd: string, args: string[], env: Record<string, string>, timeoutMs = 90_000, cwd = packageRoot()): Promise<CommandRun> {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(killer);
  return { code, stdout, stderr };
}

/**
 * One `weft` command to its end, as a user runs it: against the database
 * unless `env` names an orchestrator (WEFT_ORCHESTRATOR_URL and
 * WEFT_API_TOKEN from the test runner's own environment are cleared).
 */
export function weftCommand(args: string[], env: Record<string, string>, timeoutMs = 90_000): Promise<CommandRun> {
  return runCommand(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', ...args],
    { WEFT_LOG_LEVEL: 'warn', WEFT_ORCHESTRATOR_URL: '', WEFT_API_TOKEN: '', ...env },
    timeoutMs,
  );
}
