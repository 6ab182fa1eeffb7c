import type { ClaimedStep } from '../../src/store/events.js';

/** A claimed step as the store hands it to a runner, for tests of runners that need no database. */
export function claimedStep(o: {
  handler: string;
  name: string;
  runtime: string;
  context: unknown;
  deps?: Record<string, unknown>;
  attempt?: number;
  id?: string;
}): ClaimedStep {
  return {
    id: o.id ?? `id-${o.name}`,
    task_id: 'task-1',
    namespace: 'ns',
    template: 'tpl',
    version: '1.0.0',
    name: o.name,
    template_step: o.name,
    type: 'standard',
    runtime: o.runtime,
    handler: o.handler,
    queue: `step.ns.${o.runtime}`,
    attempt: o.attempt ?? 1,
    max_attempts: 3,
    failures: 0,
    timeout_ms: 10_000,
    inputs: {},
    batch: null,
    contextJson: JSON.stringify(o.context),
    dependencyResultsJson: JSON.stringify(o.deps ?? {}),
    watched: false,
  };
}
