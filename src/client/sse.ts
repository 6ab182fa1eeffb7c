/**
 * A reader of `text/event-stream` bodies (the HTML standard's event stream
 * format, as src/api/sse.ts writes it): events are separated by a blank
 * line, `event:` names one, `data:` lines carry its text, lines starting
 * with `:` are comments (keep-alives). Nothing here knows weft's events.
 */

export interface ServerSentEvent {
  event: string;
  data: string;
}

/**
 * Every complete event of a byte stream, in order. Ends when the stream
 * does; a last event without its blank line is incomplete and dropped, as
 * the format says.
 */
export async function* readServerSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const event = parseBlock(block);
        if (event) yield event;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** One event's lines; undefined for a block of comments and `retry:` alone. */
function parseBlock(block: string): ServerSentEvent | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length > 0 ? { event, data: data.join('\n') } : undefined;
}
