import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ago, bothZones, time } from './format.js';

/** Components that show the passing of time, re-rendered together by one timer per period. */
const tickers = new Map<number, { timer: ReturnType<typeof setInterval>; listeners: Set<() => void> }>();

/**
 * The current time, renewed every `everyMs` while `active` (one shared timer
 * per period, however many components ask): for relative times, elapsed
 * durations and a timeline that grows while its task runs.
 */
export function useNow(everyMs: number, active = true): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    if (!active) return;
    let t = tickers.get(everyMs);
    if (!t) {
      const listeners = new Set<() => void>();
      t = { listeners, timer: setInterval(() => listeners.forEach((fn) => fn()), everyMs) };
      tickers.set(everyMs, t);
    }
    const fn = () => setNow(Date.now());
    t.listeners.add(fn);
    fn();
    return () => {
      t.listeners.delete(fn);
      if (t.listeners.size === 0) {
        clearInterval(t.timer);
        tickers.delete(everyMs);
      }
    };
  }, [everyMs, active]);
  return now;
}

/** The page's title, `<what> · weft`, while the component is shown (nothing when `what` is undefined). */
export function useTitle(what: string | undefined): void {
  useEffect(() => {
    if (what !== undefined) document.title = what ? `${what} · weft` : 'weft';
  }, [what]);
}

/**
 * An instant: the date and time in the chosen zone (named), how long ago,
 * and both zones to the millisecond on hover.
 */
export function When(props: { at: string | null | undefined; relative?: boolean }) {
  const now = useNow(5_000, props.relative !== false && !!props.at);
  if (!props.at) return html`<span>–</span>`;
  return html`<time datetime=${props.at} title=${bothZones(props.at)}>${time(props.at)}</time>${
      props.relative !== false ? html` <span class="muted rel">(${ago(now - new Date(props.at).getTime())})</span>` : ''
    }`;
}
