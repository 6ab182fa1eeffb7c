import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * The process logger: structured JSON through pino, readable on a TTY.
 *
 * Per-step events are logged at `debug`, lifecycle at `info`, so at the
 * default level the hot path costs one `isLevelEnabled` check. Build a child
 * logger once per task/step scope and keep it; never build payloads for a
 * disabled level (guard with `log.isLevelEnabled('debug')`).
 */
export function createLogger(options: { level?: string; name?: string; pretty?: boolean } = {}): Logger {
  const level = options.level ?? process.env.WEFT_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? (process.stderr.isTTY === true && process.env.WEFT_LOG_FORMAT !== 'json');
  const base = { name: options.name ?? 'weft' };
  if (pretty) {
    return pino({
      level,
      base,
      // Colours only where the terminal supports them and NO_COLOR is unset (pino-pretty's own check).
      transport: { target: 'pino-pretty', options: { destination: 2, ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base }, pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything; for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
