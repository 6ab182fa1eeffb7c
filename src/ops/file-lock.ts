import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { WeftError } from '../shared/errors.js';
import { processIdentity, sameProcess, type ProcessIdentity } from './processes.js';

const LOCK_WAIT_MS = 90_000;
const LOCK_POLL_MS = 50;
/** A lock file with no holder written into it is a creator that died between open and write. */
const EMPTY_LOCK_STALE_MS = 10_000;

/** A lock could not be taken: its file cannot be created, or its holder kept it too long. */
export class LockError extends WeftError {
  override name = 'LockError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('lock_unavailable', message, options);
  }
}

/**
 * An exclusive lock file (`open(path, 'wx')`) holding `{pid, start, token}`. A lock whose holder is dead
 * is broken at once; waiting is bounded.
 *
 * Why not `proper-lockfile`: it judges a lock stale by an mtime its holder refreshes on a timer, so a
 * holder killed with -9 blocks every waiter for the whole stale period (≥ 2 s, 10 s by default) and a
 * holder whose event loop stalls past it loses the lock while still working. The embedded PostgreSQL's
 * lock is held by short-lived CLI processes that are killed often (tests, Ctrl-C), and released from a
 * synchronous `exit` handler; a holder identified by pid and start time answers both exactly.
 */
export class FileLock {
  private constructor(
    private readonly file: string,
    private readonly token: string,
  ) {}

  static async acquire(file: string, purpose: string, waitMs = LOCK_WAIT_MS): Promise<FileLock> {
    const token = randomBytes(8).toString('hex');
    const content = JSON.stringify({ ...processIdentity(process.pid), token });
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        const handle = await fs.open(file, 'wx', 0o644);
        try {
          await handle.writeFile(content);
        } finally {
          await handle.close();
        }
        return new FileLock(file, token);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new LockError(`cannot create the lock file ${file}: ${(err as Error).message}; check that ${path.dirname(file)} is writable by this user`, {
            cause: err,
          });
        }
      }
      const holder = await FileLock.inspect(file);
      if (holder.stale) {
        await FileLock.breakStale(file, holder.text);
        continue;
      }
      if (Date.now() > deadline) {
        throw new LockError(
          `timed out after ${waitMs / 1000} s waiting for ${file}, held by ${holder.pid === null ? 'an unknown process' : `pid ${holder.pid}`}, ` +
            `which is ${purpose}; if no weft process is running, delete ${file}`,
        );
      }
      await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
    }
  }

  private static async inspect(file: string): Promise<{ stale: boolean; pid: number | null; text: string | null }> {
    let text: string;
    let mtimeMs: number;
    try {
      [text, { mtimeMs }] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
    } catch {
      return { stale: false, pid: null, text: null }; // just released: try again
    }
    if (text === '') return { stale: Date.now() - mtimeMs > EMPTY_LOCK_STALE_MS, pid: null, text };
    try {
      const holder = JSON.parse(text) as ProcessIdentity;
      return { stale: !sameProcess(holder.pid, holder), pid: holder.pid, text };
    } catch {
      return { stale: Date.now() - mtimeMs > EMPTY_LOCK_STALE_MS, pid: null, text };
    }
  }

  /**
   * Two waiters may find the same stale lock; a plain unlink could then delete the lock the faster one has
   * just taken. So the lock is renamed aside (atomic), and put back if it turns out not to be the stale one.
   */
  private static async breakStale(file: string, staleText: string | null): Promise<void> {
    const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await fs.rename(file, aside);
    } catch {
      return; // already gone
    }
    const text = await fs.readFile(aside, 'utf8').catch(() => null);
    if (text !== staleText) await fs.link(aside, file).catch(() => {});
    await fs.rm(aside, { force: true });
  }

  async release(): Promise<void> {
    const text = await fs.readFile(this.file, 'utf8').catch(() => null);
    if (text !== null && text.includes(this.token)) await fs.rm(this.file, { force: true });
  }
}
