import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A pino logger that keeps every line, so a test can assert what was logged. */
export function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { log: pino({ level: 'trace' }, stream), lines };
}
