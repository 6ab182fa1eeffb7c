/**
 * RabbitMQ administration that is not a message bus: what tooling (the
 * benchmark, the cluster supervisor) needs, kept here so that nothing outside
 * src/messaging imports amqplib or knows how queues are named.
 */
import amqp from 'amqplib';
import { deadLetterExchange, deadLetterQueue, stepQueue } from './queues.js';

/** The RabbitMQ server's version as it announces it on connect, or null when it cannot be reached. */
export async function brokerVersion(url: string): Promise<string | null> {
  try {
    const conn = await amqp.connect(url);
    const props = (conn as unknown as { connection: { serverProperties?: { version?: string } } }).connection.serverProperties;
    await conn.close();
    return props?.version ?? null;
  } catch {
    return null;
  }
}

/**
 * Delete every queue a bus with queue prefix `prefix` may have declared for
 * these namespaces and runtimes (step queues and their dead-letter queues) and
 * its dead-letter exchange. Queues that do not exist are
 * skipped.
 */
export async function deletePrefixQueues(url: string, prefix: string, namespaces: Iterable<string>, runtimes: readonly string[]): Promise<void> {
  const names = new Set<string>();
  for (const ns of namespaces) for (const rt of runtimes) names.add(stepQueue(ns, rt));
  const conn = await amqp.connect(url);
  try {
    let ch = await conn.createChannel();
    for (const n of names) {
      for (const q of [`${prefix}.${n}`, deadLetterQueue(`${prefix}.${n}`)]) {
        try {
          await ch.deleteQueue(q);
        } catch {
          ch = await conn.createChannel(); // a channel error closes the channel
        }
      }
    }
    await ch.deleteExchange(deadLetterExchange(prefix)).catch(() => undefined);
  } finally {
    await conn.close().catch(() => undefined);
  }
}
