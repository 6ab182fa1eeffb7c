import pino, { type Logger } from 'pino';
import type { WeftConfig } from './config.js';

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
  const level = options.level ?? 'info';
  const pretty = options.pretty ?? process.stderr.isTTY === true;
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

/**
 * The process logger as the settings ask (WEFT_LOG_LEVEL, WEFT_LOG_FORMAT). A
 * client command (`weft run`, `cancel`, `token`, ...) is `quiet`: it logs
 * warnings and worse unless WEFT_LOG_LEVEL says otherwise; a server logs info.
 */
export function configuredLogger(config: Pick<WeftConfig, 'logLevel' | 'logFormat'>, options: { name?: string; quiet?: boolean } = {}): Logger {
  const level = config.logLevel ?? (options.quiet ? 'warn' : 'info');
  const pretty = config.logFormat === undefined ? undefined : config.logFormat === 'pretty';
  return createLogger({ name: options.name, level, pretty });
}

/** A logger that drops everything; for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
