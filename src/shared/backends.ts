/**
 * The messaging backends, in one list. WEFT_MESSAGING's check (config.ts),
 * the bus factory (src/messaging/index.ts), `weft cluster --backend`,
 * `weft bench --backend`, tracing and health all derive from it.
 *
 * Adding a backend is one row here plus its `MessageBus` implementation in
 * src/messaging/ and its branch in createMessageBus.
 */
export const BACKEND_TABLE = [
  // label: its name in messages; waitsFor: what a starting worker says it waits for;
  // queuePrefix: its queues are named with WEFT_QUEUE_PREFIX (weft cluster gives each cluster its own).
  { name: 'pg', label: 'PostgreSQL', waitsFor: 'database', queuePrefix: false, meaning: 'the steps table is the queue, LISTEN/NOTIFY wake-ups' },
  { name: 'rabbitmq', label: 'RabbitMQ', waitsFor: 'broker', queuePrefix: true, meaning: 'step messages through RabbitMQ; PostgreSQL stays the truth' },
] as const;

export type MessagingBackend = (typeof BACKEND_TABLE)[number]['name'];

export const BACKENDS: readonly MessagingBackend[] = BACKEND_TABLE.map((b) => b.name);

export function isBackend(name: string): name is MessagingBackend {
  return BACKENDS.includes(name as MessagingBackend);
}

/** The backend's row: its human name and what a worker waits for while it is unreachable. */
export function backendRow(backend: MessagingBackend): (typeof BACKEND_TABLE)[number] {
  return BACKEND_TABLE.find((b) => b.name === backend)!;
}

/** "pg or rabbitmq", for error messages. */
export function backendChoices(): string {
  return BACKENDS.map((b) => `"${b}"`).join(' or ');
}
