import { expect } from 'vitest';

/** One server-sent event: its name and its parsed JSON data. */
export interface ServerEvent {
  event: string;
  data: any;
}

/**
 * Follow a server-sent event stream (it must say it is one): `onEvent` sees
 * each event as it arrives (and may act on it); resolves with all of them
 * once `until` holds, or when the deadline passes.
 */
export async function followEvents(
  url: string,
  until: (events: ServerEvent[]) => boolean,
  onEvent: (e: ServerEvent) => void = () => {},
  timeoutMs = 20_000,
): Promise<ServerEvent[]> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  const events: ServerEvent[] = [];
  try {
    const res = await fetch(url, { signal: ctl.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const ev = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (ev && data) {
          const e = { event: ev, data: JSON.parse(data) };
          events.push(e);
          onEvent(e);
        }
      }
    }
  } catch (err) {
    if (!ctl.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return events;
}
