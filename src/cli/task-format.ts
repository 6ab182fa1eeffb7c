/**
 * How the CLI prints tasks and steps (`weft run`, `weft task list|show|wait`),
 * from the API's wire shapes only: an orchestrator in this process and one
 * across the network print the same lines. A step's time is its own
 * duration (started → finished), as the server measured it.
 */
import type { Task, TaskList, TaskStep } from '../client/client.js';

type Out = (s: string) => void;

export function stepMark(state: string): string {
  return { complete: '✓', waiting_retry: '↻', cancelled: '⊘', error: '✗' }[state] ?? '·';
}

/** One line per step: mark, name, result or error, attempts, duration. */
export function stepLine(s: TaskStep): string {
  const attempts = s.attempts > 1 ? `  attempt ${s.attempts}/${s.max_attempts}` : '';
  return `  ${stepMark(s.state)} ${s.name.padEnd(28)} ${stepDetail(s).padEnd(40)} ${ms(s.duration_ms).padStart(10)}${attempts}`;
}

/** A duration in ms as the CLI shows it; `-` when there is none (not run, not finished). */
export function ms(value: number | null | undefined): string {
  return value === null || value === undefined ? '-' : `${Number(value).toFixed(1)} ms`;
}

/** A step's result, error message, or its state when it has neither (cancelled, not run yet). */
function stepDetail(s: { state: string; result?: unknown; error?: unknown }): string {
  if (s.state === 'complete') return short(s.result);
  const e = s.error as { class?: string; message?: string } | null | undefined;
  if (s.state === 'error' || s.state === 'waiting_retry') return short(e?.message ? `${e.class ?? 'Error'}: ${e.message}` : e);
  return s.state;
}

function short(value: unknown, max = 40): string {
  const s = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/** The heading of a task: id, template, state, duration. */
export function taskHeading(t: Task): string {
  return `task ${t.id}  ${t.namespace}/${t.name}@${t.version}  ${t.state}${t.duration_ms !== null ? `  ${ms(t.duration_ms)}` : ''}`;
}

/**
 * A step's error as a person reads it: class and message, its kind and
 * whether it was permanent, then the backtrace, one frame a line.
 */
export function errorLines(error: unknown, indent = '    '): string[] {
  if (error === null || error === undefined) return [];
  const e = error as { language?: string; class?: string; message?: string; backtrace?: unknown; kind?: string; permanent?: boolean };
  const what = [e.language, e.kind, e.permanent ? 'permanent' : undefined].filter(Boolean).join(', ');
  const lines = [`${indent}${e.class ?? 'Error'}: ${e.message ?? JSON.stringify(error)}${what ? `  (${what})` : ''}`];
  const trace = Array.isArray(e.backtrace) ? e.backtrace.map(String) : typeof e.backtrace === 'string' ? e.backtrace.split('\n') : [];
  for (const frame of trace) if (frame.trim()) lines.push(`${indent}  ${frame.trim()}`);
  return lines;
}

/** `weft task show ID`: heading, every step, and each failed step's error with its backtrace. */
export function printTask(t: Task, out: Out): void {
  out(taskHeading(t));
  if (t.parent) out(`child of task ${t.parent.task_id}  ${t.parent.namespace}/${t.parent.name}, step ${t.parent.step}`);
  for (const s of t.steps) out(stepLine(s));
  for (const s of t.steps) if (s.child_task_id) out(`step ${s.name} runs child task ${s.child_task_id}`);
  const failure = t.error as { step?: string; reason?: string; by?: string; message?: string } | null;
  if (t.state === 'cancelled') out(`cancelled${failure?.by ? ` by ${failure.by}` : ''}${failure?.message ? `: ${failure.message}` : ''}`);
  for (const s of t.steps) {
    if (s.state !== 'error' && s.state !== 'waiting_retry') continue;
    out(`step ${s.name} (${s.state}, attempt ${s.attempts}/${s.max_attempts}${failure?.step === s.name && failure.reason ? `, ${failure.reason}` : ''}):`);
    for (const line of errorLines(s.error)) out(line);
  }
}

/** `weft task show ID --step NAME`: one step in full, every failed attempt's error included. */
export function printStep(t: Task, s: TaskStep, out: Out): void {
  out(`step ${s.name} of task ${t.id}  ${t.namespace}/${t.name}@${t.version}`);
  const row = (k: string, v: unknown) => out(`  ${k.padEnd(12)} ${v === null || v === undefined ? '-' : String(v)}`);
  row('state', s.state);
  row('handler', `${s.handler} (${s.runtime})`);
  row('attempts', `${s.attempts} of ${s.max_attempts}${s.losses ? `, ${s.losses} lost with their worker` : ''}`);
  row('parents', s.parents.length ? s.parents.join(', ') : '-');
  if (s.type === 'workflow') row('child task', s.child_task_id ?? 'not started');
  row('worker', s.worker_id);
  row('started', s.started_at);
  row('finished', s.finished_at);
  row('duration', ms(s.duration_ms));
  if (s.state === 'complete') row('result', JSON.stringify(s.result));
  if (s.error) {
    out('  error');
    for (const line of errorLines(s.error)) out(line);
  }
  // Earlier attempts' errors: the last one is `error` above when the step failed for good.
  const earlier = (s.errors ?? []).slice(0, s.error ? -1 : undefined);
  earlier.forEach((e, i) => {
    out(`  attempt ${i + 1}`);
    for (const line of errorLines(e)) out(line);
  });
}

/** `weft task list`: one line per task, its failure under it, the counts and the next page's cursor. */
export function printTaskList(page: TaskList, out: Out): void {
  if (page.tasks.length === 0) {
    out('no tasks match');
  } else {
    out(`${'ID'.padEnd(36)}  ${'TEMPLATE'.padEnd(40)}  ${'STATE'.padEnd(9)}  ${'STEPS'.padStart(7)}  ${'DURATION'.padStart(12)}  CREATED`);
    for (const t of page.tasks) {
      const template = `${t.namespace}/${t.name}@${t.version}`;
      const steps = `${t.steps_complete}/${t.steps}`;
      out(
        `${t.id}  ${template.padEnd(40)}  ${t.state.padEnd(9)}  ${steps.padStart(7)}  ${ms(t.duration_ms).padStart(12)}  ${t.created_at.replace(/\.\d+Z$/, 'Z')}`,
      );
      const e = t.error;
      if (e)
        out(
          `  ${e.step ? `${e.step}: ` : ''}${e.reason ?? ''}${e.class ? ` ${e.class}` : ''}${e.message ? `: ${e.message}` : ''}${e.by ? ` (by ${e.by})` : ''}`,
        );
    }
  }
  const counts = Object.entries(page.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  out(`counts: ${counts || 'none'}${page.next_cursor ? `; more with --cursor ${page.next_cursor}` : ''}`);
}
