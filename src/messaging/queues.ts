/**
 * Queue names. Work is routed by namespace and runtime, so one template can
 * mix runtimes and each worker consumes only what it can run. The SQL in
 * src/store builds the same names (`'step.' || namespace || '.' || runtime`).
 */
export function stepQueue(namespace: string, runtime: string): string {
  return `step.${namespace}.${runtime}`;
}

/** RabbitMQ: where a queue's rejected messages go. */
export function deadLetterQueue(queue: string): string {
  return `${queue}.dlq`;
}

/** RabbitMQ: the exchange that routes rejected messages of every queue under `prefix`. */
export function deadLetterExchange(prefix: string): string {
  return `${prefix}.dlx`;
}

/** Body of a step message (RabbitMQ): which step of which task is ready. */
export interface StepMessage {
  task_id: string;
  step_id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * What is wrong with a message body as a step message, or undefined when it
 * is one: an object whose `task_id` and `step_id` are UUIDs. A message that
 * fails this is dead-lettered with the reason; claimed, it would fail on its
 * data at every delivery.
 *
 * @example
 *   stepMessageProblem({ task_id: '…uuid…', step_id: 'x' }) // 'step_id "x" is not a UUID'
 */
export function stepMessageProblem(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body is not a JSON object {"task_id": UUID, "step_id": UUID}';
  for (const field of ['task_id', 'step_id'] as const) {
    const v = (body as Record<string, unknown>)[field];
    if (typeof v !== 'string') return `${field} is ${v === undefined ? 'missing' : `a ${typeof v}`}; expected a UUID string`;
    if (!UUID.test(v)) return `${field} ${JSON.stringify(v.slice(0, 100))} is not a UUID`;
  }
  return undefined;
}
