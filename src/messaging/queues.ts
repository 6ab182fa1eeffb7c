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

export function isStepMessage(body: unknown): body is StepMessage {
  return typeof body === 'object' && body !== null && typeof (body as StepMessage).task_id === 'string' && typeof (body as StepMessage).step_id === 'string';
}
