/**
 * What the database says after a scenario's load drained: the guarantees of
 * docs/operations.md, counted, read from the tables and the audit trail only.
 */
import type pg from 'pg';
import { STEP_TRANSITIONS, TASK_TRANSITIONS } from '../../src/core/states.js';
import type { Expectation } from './deployment.js';

export interface Audit {
  tasks: number;
  /** accepted (201) tasks missing from the database, or not ended when the wait gave up */
  lost: number;
  /** ended in the wrong state or with the wrong answer */
  wrong: number;
  /** steps (and tasks) with more than one transition to `complete`, and tasks the client never got an id for (a resubmission that created a second task) */
  duplicated: number;
  /** transitions not in src/core/states.ts, or that do not start from the state the previous one left (gaps in seq included) */
  illegal: number;
  /** handler failures recorded (steps.failures) on steps whose handlers never fail: retry budget a fault used */
  faultAttempts: number;
  /** `losses` recorded: worker losses the suite caused (they use no attempt) */
  losses: number;
  /** first few problems, for the assertion message */
  problems: string[];
}

export interface TransitionRow {
  id: string;
  seq: number;
  from_state: string | null;
  to_state: string;
}

export function checkChains(
  rows: TransitionRow[],
  legal: Readonly<Record<string, readonly string[]>>,
  what: string,
  problems: string[],
): { illegal: number; duplicated: number } {
  let illegal = 0;
  let duplicated = 0;
  let prev: TransitionRow | undefined;
  let completes = 0;
  const close = () => {
    if (completes > 1) {
      duplicated++;
      problems.push(`${what} ${prev!.id} was completed ${completes} times`);
    }
    completes = 0;
  };
  for (const r of rows) {
    const first = prev?.id !== r.id;
    if (first) {
      if (prev) close();
      if (r.seq !== 1 || r.from_state !== null || r.to_state !== 'pending') {
        illegal++;
        problems.push(`${what} ${r.id} starts with seq ${r.seq} ${r.from_state}→${r.to_state}`);
      }
    } else {
      const ok = r.seq === prev!.seq + 1 && r.from_state === prev!.to_state && (legal[r.from_state!] ?? []).includes(r.to_state);
      if (!ok) {
        illegal++;
        problems.push(`${what} ${r.id} seq ${r.seq}: ${r.from_state}→${r.to_state} after seq ${prev!.seq} ${prev!.from_state}→${prev!.to_state}`);
      }
    }
    if (r.to_state === 'complete') completes++;
    prev = r;
  }
  if (prev) close();
  return { illegal, duplicated };
}

/**
 * Audit a drained scenario. `suicideLosses`: WEFT_STEP_MAX_LOSSES, for the
 * step whose handler kills its worker (it must end with exactly that many
 * losses, a WorkerLostError and no failure).
 */
export async function audit(db: pg.Pool, expected: Expectation[], suicideLosses?: number): Promise<Audit> {
  const problems: string[] = [];
  const ids = expected.map((e) => e.id);
  const { rows: tasks } = await db.query<{ id: string; state: string }>(`SELECT id, state FROM weft.tasks WHERE id = ANY($1::uuid[])`, [ids]);
  const { rows: steps } = await db.query<{
    id: string;
    task_id: string;
    name: string;
    state: string;
    result: unknown;
    failures: number;
    losses: number;
    attempts: number;
    error: { class?: string; message?: string } | null;
  }>(`SELECT s.id, s.task_id, s.name, s.state, s.result, s.failures, s.losses, s.attempts, s.error FROM weft.steps s WHERE s.task_id = ANY($1::uuid[])`, [ids]);
  const byTask = new Map(tasks.map((t) => [t.id, t]));
  const stepsOf = new Map<string, typeof steps>();
  for (const s of steps) stepsOf.set(s.task_id, [...(stepsOf.get(s.task_id) ?? []), s]);

  let lost = 0;
  let wrong = 0;
  let faultAttempts = 0;
  let losses = 0;
  for (const e of expected) {
    const t = byTask.get(e.id);
    if (!t || t.state === 'pending' || t.state === 'running') {
      lost++;
      if (problems.length < 20) problems.push(`task ${e.id} (${e.namespace}) is ${t ? `still ${t.state}` : 'missing'}`);
      continue;
    }
    const mine = stepsOf.get(e.id) ?? [];
    for (const s of mine) {
      losses += s.losses;
      if (e.namespace === 'faults_suicide' && s.name === 'kill_worker') continue;
      faultAttempts += s.failures;
    }
    if (t.state !== e.state) {
      wrong++;
      problems.push(
        `task ${e.id} (${e.namespace}) ended ${t.state}, expected ${e.state}: ${JSON.stringify(mine.filter((s) => s.error).map((s) => [s.name, s.error]))}`,
      );
      continue;
    }
    if (e.step !== undefined) {
      const answer = mine.find((s) => s.name === e.step)?.result;
      const value = answer && typeof answer === 'object' && 'v' in answer ? (answer as { v: unknown }).v : answer;
      if (String(value) !== e.value) {
        wrong++;
        problems.push(`task ${e.id} (${e.namespace}) answered ${JSON.stringify(answer)}, expected ${e.value}`);
      }
    }
    if (e.namespace === 'faults_suicide') {
      const k = mine.find((s) => s.name === 'kill_worker');
      const ok =
        k &&
        k.state === 'error' &&
        k.error?.class === 'WorkerLostError' &&
        k.failures === 0 &&
        k.losses === suicideLosses &&
        /lost its worker/.test(k.error.message ?? '');
      if (!ok) {
        wrong++;
        problems.push(
          `task ${e.id}: its self-killing step ended ${JSON.stringify(k)}, expected error WorkerLostError after ${suicideLosses} losses and no failure`,
        );
      }
    }
  }

  const { rows: stepRows } = await db.query<TransitionRow>(
    `SELECT step_id AS id, seq, from_state, to_state FROM weft.step_transitions WHERE task_id = ANY($1::uuid[]) ORDER BY step_id, seq`,
    [ids],
  );
  const { rows: taskRows } = await db.query<TransitionRow>(
    `SELECT task_id AS id, seq, from_state, to_state FROM weft.task_transitions WHERE task_id = ANY($1::uuid[]) ORDER BY task_id, seq`,
    [ids],
  );
  const s = checkChains(stepRows, STEP_TRANSITIONS, 'step', problems);
  const t = checkChains(taskRows, TASK_TRANSITIONS, 'task', problems);
  // Each scenario has a database of its own: any other task is one the client did not ask for.
  const { rows: extra } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM weft.tasks WHERE NOT (id = ANY($1::uuid[]))`, [ids]);
  if (extra[0]!.n > 0) problems.push(`${extra[0]!.n} tasks in the database that no submission was answered with`);
  return {
    tasks: expected.length,
    lost,
    wrong,
    duplicated: s.duplicated + t.duplicated + extra[0]!.n,
    illegal: s.illegal + t.illegal,
    faultAttempts,
    losses,
    problems: problems.slice(0, 20),
  };
}
