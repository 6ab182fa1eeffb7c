import type { Database } from '../store/database.js';
import type { Logger } from '../shared/logger.js';
import type { TemplateCatalog } from './template-catalog.js';
import { DEFAULT_GRACE_MS, firingKey, nextFiring, nextFirings, planFirings, scheduleSpec, type ScheduleInput, type ScheduleSpec } from '../core/schedule.js';
import {
  advanceSchedule,
  deleteSchedule,
  getSchedule,
  listSchedules,
  recordScheduleEvent,
  saveSchedule,
  scheduleEvents,
  setSchedulePaused,
  taskStateOf,
  withDueSchedules,
  type ScheduleEvent,
  type ScheduleRow,
  type ScheduleTx,
} from '../store/schedules.js';
import { ConflictError, NotFoundError, ValidationError, describeError } from '../shared/errors.js';

/** What the book needs of the orchestrator: creating and cancelling tasks (with their delivery). */
export interface TaskStarter {
  createTask(req: { namespace: string; name: string; version?: string; context?: unknown; idempotency_key?: string }): Promise<{ id: string }>;
  cancelTask(taskId: string, by: string, reason?: string): Promise<unknown>;
}

/** Schedules one sweep fires at most (the rest wait for the next sweep, or another orchestrator). */
const SCHEDULES_PER_SWEEP = 50;
/** Next firings shown with a schedule (API, CLI, dashboard). */
const SHOWN_FIRINGS = 5;

export interface ScheduleView extends ScheduleRow {
  next_firings: Date[];
}

/**
 * Schedules as orchestration uses them: checked against the registered
 * templates when saved, fired by every orchestrator's sweep. A firing's
 * task has the idempotency key `schedule:<name>:<time>`, so with any number
 * of orchestrators, and across a crash between creating the task and
 * recording the firing, each firing has exactly one task.
 */
export class ScheduleBook {
  constructor(
    private readonly db: Database,
    private readonly templates: TemplateCatalog,
    private readonly tasks: TaskStarter,
    private readonly log: Logger,
    private readonly pid: string,
    /** A firing later than this is missed: the schedule's catch_up policy decides whether it still fires. */
    private readonly graceMs: number = DEFAULT_GRACE_MS,
  ) {}

  /**
   * Create a schedule (or with `replace`, change the one of that name).
   * ValidationError names the field: name, template (unknown or malformed),
   * cron, timezone, overlap, catch_up, context (against the template's input_schema).
   */
  async save(
    input: ScheduleInput,
    opts: { actor: string; paused?: boolean; source?: 'api' | 'template'; replace?: boolean; prefix?: string },
  ): Promise<{ schedule: ScheduleView; outcome: 'created' | 'updated' | 'unchanged' }> {
    const prefix = opts.prefix ?? '';
    const spec = scheduleSpec(input, prefix);
    await this.checkTemplate(spec, prefix);
    const next = nextFiring(spec, new Date());
    if (!next) {
      throw new ValidationError(`${prefix}cron ${JSON.stringify(spec.cron)} never fires after now; give one that does`, `${prefix}cron`);
    }
    const { row, outcome } = await saveSchedule(this.db, spec, {
      nextFireAt: next,
      paused: opts.paused ?? false,
      source: opts.source ?? 'api',
      actor: opts.actor,
      replace: opts.replace ?? false,
    });
    if (outcome !== 'unchanged') this.log.info({ schedule: spec.name, cron: spec.cron, timezone: spec.timezone, outcome }, 'schedule saved');
    return { schedule: this.view(row), outcome };
  }

  /** The template exists (in the version asked for) and the context satisfies its input_schema. */
  private async checkTemplate(spec: ScheduleSpec, prefix: string): Promise<void> {
    let entry;
    try {
      entry = await this.templates.get(spec.namespace, spec.template, spec.version);
    } catch (err) {
      if (err instanceof NotFoundError) throw new ValidationError(`${prefix}template: ${err.message}`, `${prefix}template`);
      throw err;
    }
    const check = entry.checkInput(spec.context);
    if (!check.ok) {
      const first = check.problems[0]!;
      throw new ValidationError(
        `${prefix}context does not match the input_schema of ${spec.namespace}/${spec.template}: ` + check.problems.map((p) => p.message).join('; '),
        `${prefix}${first.path}`,
        check.problems,
      );
    }
  }

  async list(): Promise<ScheduleView[]> {
    return (await listSchedules(this.db)).map((r) => this.view(r));
  }

  /** The schedule with its next firings and latest audit rows. */
  async get(name: string, events = 20): Promise<ScheduleView & { events: ScheduleEvent[] }> {
    const row = await getSchedule(this.db, name);
    return { ...this.view(row), events: await scheduleEvents(this.db, name, events) };
  }

  async pause(name: string, actor: string): Promise<ScheduleView> {
    return this.view(await setSchedulePaused(this.db, name, true, null, actor));
  }

  /** Resume from now: the firings that fell in the pause are not caught up (no burst). */
  async resume(name: string, actor: string): Promise<ScheduleView> {
    const row = await getSchedule(this.db, name);
    const next = nextFiring(row, new Date());
    if (!next) throw new ConflictError(`schedule ${name}'s cron ${JSON.stringify(row.cron)} never fires again; delete it or save a new cron`);
    return this.view(await setSchedulePaused(this.db, name, false, next, actor));
  }

  async delete(name: string, actor: string): Promise<void> {
    await deleteSchedule(this.db, name, actor);
    this.log.info({ schedule: name, by: actor }, 'schedule deleted');
  }

  private view(row: ScheduleRow): ScheduleView {
    return { ...row, next_firings: row.paused ? [] : nextFirings(row, new Date(Math.max(Date.now() - 1, 0)), SHOWN_FIRINGS) };
  }

  // -------------------------------------------------------------------------
  // The sweep
  // -------------------------------------------------------------------------

  /** Fire every due schedule this orchestrator can lock; returns how many it handled. */
  async sweep(): Promise<number> {
    return withDueSchedules(this.db, SCHEDULES_PER_SWEEP, async (c, due) => {
      for (const row of due) await this.fireDue(c, row);
    });
  }

  private async fireDue(c: ScheduleTx, row: ScheduleRow): Promise<void> {
    const plan = planFirings(row, row.next_fire_at!, new Date(), this.graceMs);
    if (plan.missed) {
      const { count, first, last } = plan.missed;
      await recordScheduleEvent(c, {
        schedule: row.name,
        kind: 'missed',
        fireAt: first,
        actor: this.pid,
        detail: { count, last: last.toISOString(), catch_up: row.catch_up, grace_ms: this.graceMs },
      });
      this.log.warn({ schedule: row.name, missed: count, first, last, catch_up: row.catch_up }, 'schedule missed firings (no orchestrator ran then)');
    }
    let lastTask = row.last_task_id;
    let lastFire: Date | undefined;
    for (const [i, at] of plan.fire.entries()) {
      lastFire = at;
      const taskId = await this.fireOne(c, row, at, lastTask, i < plan.caughtUp);
      if (taskId) lastTask = taskId;
    }
    await advanceSchedule(c, row.name, plan.next ?? null, lastFire ? { fireAt: lastFire, taskId: lastTask } : undefined);
  }

  /** One firing under the overlap policy; the task it created, if any. */
  private async fireOne(c: ScheduleTx, row: ScheduleRow, at: Date, previous: string | null, caughtUp: boolean): Promise<string | undefined> {
    if (previous && row.overlap !== 'allow') {
      const state = await taskStateOf(c, previous);
      if (state === 'pending' || state === 'running') {
        if (row.overlap === 'skip') {
          await recordScheduleEvent(c, {
            schedule: row.name,
            kind: 'skipped',
            fireAt: at,
            actor: this.pid,
            detail: { reason: 'overlap', running_task: previous },
          });
          return undefined;
        }
        await this.tasks.cancelTask(previous, `schedule:${row.name}`, `superseded by the firing of ${at.toISOString()}`).catch((err: unknown) => {
          // It ended on its own meanwhile: nothing to cancel.
          if (!(err instanceof ConflictError)) throw err;
        });
      }
    }
    let taskId: string;
    try {
      taskId = (
        await this.tasks.createTask({
          namespace: row.namespace,
          name: row.template,
          version: row.version,
          context: row.context,
          idempotency_key: firingKey(row.name, at),
        })
      ).id;
    } catch (err) {
      const existing = err instanceof ConflictError ? (err.details?.task_id as string | undefined) : undefined;
      if (existing) {
        // An orchestrator created it and died before recording the firing: the firing happened once.
        taskId = existing;
      } else if (err instanceof NotFoundError || err instanceof ValidationError) {
        // The template (version) is gone or its input_schema changed: this firing cannot run, later ones may.
        await recordScheduleEvent(c, { schedule: row.name, kind: 'skipped', fireAt: at, actor: this.pid, detail: { reason: describeError(err).message } });
        this.log.error({ schedule: row.name, fire_at: at, err: describeError(err).message }, 'schedule firing could not create its task');
        return undefined;
      } else throw err;
    }
    await recordScheduleEvent(c, {
      schedule: row.name,
      kind: 'fired',
      fireAt: at,
      taskId,
      actor: this.pid,
      detail: firingDetail(row.overlap === 'cancel_previous' ? previous : null, caughtUp),
    });
    if (this.log.isLevelEnabled('debug')) this.log.debug({ schedule: row.name, fire_at: at, task_id: taskId }, 'schedule fired');
    return taskId;
  }
}

/** What a `fired` audit row says beyond its time and task: the task it superseded, and whether it was caught up late. */
function firingDetail(superseded: string | null, caughtUp: boolean): Record<string, unknown> | undefined {
  if (!superseded && !caughtUp) return undefined;
  return { ...(superseded ? { previous_task: superseded } : {}), ...(caughtUp ? { caught_up: true } : {}) };
}
