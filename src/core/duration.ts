/**
 * Durations as people write them in templates and requests: a number and a
 * unit, `500ms`, `2s`, `1.5m`, `12h`, `3d`. A bare number is refused: is
 * `delay: 15` seconds or minutes? (A sleep's `duration`, a wait's `timeout`,
 * a task's `delay`; docs/templates.md.)
 *
 * @example
 *   durationMs('15m') // 900000
 *   durationMs('15')  // undefined
 */
export function durationMs(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

/** What a valid duration looks like, for error messages. */
export const DURATION_EXAMPLES = 'a number and a unit (ms, s, m, h or d), e.g. 30s, 15m, 12h or 3d';
