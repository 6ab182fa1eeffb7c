import { Cron } from 'croner';
import { ValidationError } from '../shared/errors.js';

/**
 * Schedules as data: checking a schedule's fields, its next firing times,
 * and which due firings a sweep fires under the catch-up policy. Pure: the
 * clock is an argument. Time zones and DST are croner's business (a wall
 * time that DST skips fires an hour later, e.g. 02:30 becomes 03:30 on the
 * spring-forward night in Europe/Berlin; one that DST repeats fires once).
 */

export const OVERLAP_POLICIES = ['skip', 'allow', 'cancel_previous'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];
export const CATCH_UP_POLICIES = ['none', 'last', 'all'] as const;
export type CatchUpPolicy = (typeof CATCH_UP_POLICIES)[number];

/** `catch_up: all` fires at most this many missed firings after a downtime; older ones are recorded as missed. */
export const MAX_CATCH_UP = 100;
/** A firing later than this is "missed" and falls under the catch-up policy (the orchestrator's default; see scheduleGraceMs). */
export const DEFAULT_GRACE_MS = 60_000;

const NAME = /^[a-z][a-z0-9_-]{0,99}$/;

export interface ScheduleSpec {
  name: string;
  namespace: string;
  template: string;
  /** Undefined: the latest registered version at each firing. */
  version?: string;
  cron: string;
  timezone: string;
  context: unknown;
  overlap: OverlapPolicy;
  catch_up: CatchUpPolicy;
}

/** A schedule as stored (migrations/008_schedules.sql): its spec and its state. */
export interface ScheduleRecord extends ScheduleSpec {
  paused: boolean;
  /** NULL only while paused. */
  next_fire_at: Date | null;
  last_fire_at: Date | null;
  last_task_id: string | null;
  /** `template` when a template file declared it. */
  source: 'api' | 'template';
  created_at: Date;
  updated_at: Date;
}

export type ScheduleEventKind = 'created' | 'updated' | 'paused' | 'resumed' | 'deleted' | 'fired' | 'skipped' | 'missed';

/** One audit row of a schedule (weft.schedule_events), kept after the schedule is deleted. */
export interface ScheduleEvent {
  id: string;
  schedule: string;
  kind: ScheduleEventKind;
  fire_at: Date | null;
  /** The task a `fired` row started. */
  task_id: string | null;
  /** Who: `token:NAME`, `anonymous`, `template`, … */
  actor: string | null;
  detail: Record<string, unknown> | null;
  at: Date;
}

/** What a caller sends; the policies have defaults (overlap skip, catch_up last). */
export interface ScheduleInput {
  name: string;
  /** NAMESPACE/NAME[@VERSION] */
  template: string;
  cron: string;
  timezone?: string;
  context?: unknown;
  overlap?: string;
  catch_up?: string;
}

/** Check a schedule's fields; ValidationError names the field (`prefix` + field) and how to fix it. */
export function scheduleSpec(input: ScheduleInput, prefix = ''): ScheduleSpec {
  if (!NAME.test(input.name)) {
    throw new ValidationError(
      `${prefix}name ${JSON.stringify(input.name)} is not a schedule name: use 1 to 100 lower-case letters, digits, "_" or "-", starting with a letter`,
      `${prefix}name`,
    );
  }
  const m = /^([a-z][a-z0-9_]*)\/([a-z][a-z0-9_]*)(?:@(.+))?$/.exec(input.template);
  if (!m) {
    throw new ValidationError(
      `${prefix}template ${JSON.stringify(input.template)} is not NAMESPACE/NAME[@VERSION], e.g. reports/nightly_report@1.0.0`,
      `${prefix}template`,
    );
  }
  const timezone = input.timezone ?? 'UTC';
  cronOf(input.cron, timezone, prefix);
  return {
    name: input.name,
    namespace: m[1]!,
    template: m[2]!,
    version: m[3],
    cron: input.cron,
    timezone,
    context: input.context ?? {},
    overlap: oneOf(input.overlap ?? 'skip', OVERLAP_POLICIES, `${prefix}overlap`),
    catch_up: oneOf(input.catch_up ?? 'last', CATCH_UP_POLICIES, `${prefix}catch_up`),
  };
}

function oneOf<T extends string>(value: string, allowed: readonly T[], path: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new ValidationError(`${path} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`, path);
}

/** The cron, checked: the zone first (a bad zone would otherwise read as a bad pattern), then the pattern. */
function cronOf(pattern: string, timezone: string, prefix = ''): Cron {
  if (!isTimeZone(timezone)) {
    throw new ValidationError(
      `${prefix}timezone ${JSON.stringify(timezone)} is not a time zone this system knows; use an IANA name such as Europe/Berlin, America/New_York or UTC`,
      `${prefix}timezone`,
    );
  }
  try {
    // legacyMode: day-of-month and day-of-week are OR-ed, as in every crontab.
    return new Cron(pattern, { timezone, paused: true, legacyMode: true });
  } catch (err) {
    throw new ValidationError(
      `${prefix}cron ${JSON.stringify(pattern)} is not a cron expression (${(err as Error).message}); ` +
        'use five fields "minute hour day-of-month month day-of-week" (e.g. "0 9 * * MON-FRI"), or six with seconds first',
      `${prefix}cron`,
    );
  }
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone.length > 0;
  } catch {
    return false;
  }
}

/** The first firing strictly after `after`, or undefined when the expression never fires again. */
export function nextFiring(spec: Pick<ScheduleSpec, 'cron' | 'timezone'>, after: Date): Date | undefined {
  return cronOf(spec.cron, spec.timezone).nextRun(after) ?? undefined;
}

/** The next `n` firings after `after` (for the API and the dashboard). */
export function nextFirings(spec: Pick<ScheduleSpec, 'cron' | 'timezone'>, after: Date, n: number): Date[] {
  return cronOf(spec.cron, spec.timezone).nextRuns(n, after);
}

/** What one sweep does with a schedule whose next firing is due. */
export interface FiringPlan {
  /** Firing times to fire, oldest first. */
  fire: Date[];
  /** How many of `fire` (its first ones) are late, fired under catch_up. */
  caughtUp: number;
  /** Due firing times not fired (late, under catch_up none or last, or beyond MAX_CATCH_UP). */
  missed: { count: number; first: Date; last: Date; more?: boolean } | undefined;
  /** The next firing after now, to store as next_fire_at. */
  next: Date | undefined;
}

/**
 * The due firings from `due` (the stored next_fire_at) up to `now`: those at
 * most `graceMs` late are fired whatever the policy; the later ("missed",
 * e.g. while every orchestrator was down) follow `catch_up`: none fires none
 * of them, last the latest of them, all every one (at most MAX_CATCH_UP, the
 * latest). The work is bounded: croner takes about 2 ms per step in a time
 * zone, so after HEAD_SCAN due times the walk jumps to shortly before now
 * (a per-second cron after a week down costs a few hundred steps, not
 * 600,000); the firings jumped over are missed, and `count` is then a lower
 * bound (`more` says so).
 */
export function planFirings(spec: Pick<ScheduleSpec, 'cron' | 'timezone' | 'catch_up'>, due: Date, now: Date, graceMs: number): FiringPlan {
  const cron = cronOf(spec.cron, spec.timezone);
  const head = walk(cron, due, now, HEAD_SCAN);
  let times = head.times;
  let jumped = false;
  if (!head.complete) {
    const last = times[times.length - 1]!;
    const perFiring = Math.max(1_000, (last.getTime() - due.getTime()) / Math.max(1, times.length - 1));
    const tailStart = new Date(now.getTime() - graceMs - (MAX_CATCH_UP + 2) * perFiring);
    const from = tailStart > last ? cron.nextRun(tailStart) : cron.nextRun(last);
    jumped = tailStart > last;
    const tail = from ? walk(cron, from, now, TAIL_SCAN) : { times: [], complete: true };
    times = times.concat(tail.times);
    jumped ||= !tail.complete;
  }
  const late = times.filter((t) => now.getTime() - t.getTime() > graceMs);
  const onTime = times.slice(late.length);
  const keep = spec.catch_up === 'none' ? 0 : spec.catch_up === 'last' ? 1 : MAX_CATCH_UP;
  const caught = late.slice(Math.max(0, late.length - keep));
  const missed = late.slice(0, late.length - caught.length);
  return {
    fire: [...caught, ...onTime],
    caughtUp: caught.length,
    missed: missed.length ? { count: missed.length, first: missed[0]!, last: missed[missed.length - 1]!, ...(jumped ? { more: true } : {}) } : undefined,
    next: cron.nextRun(now) ?? undefined,
  };
}

/** Due times walked from the stored next firing before jumping towards now (see planFirings). */
const HEAD_SCAN = 200;
/** Due times walked at most from the jump to now. */
const TAIL_SCAN = 2_000;

/** The firing times from `from` (itself a firing time) up to `now`, at most `limit`; `complete` when now was reached. */
function walk(cron: Cron, from: Date, now: Date, limit: number): { times: Date[]; complete: boolean } {
  const times: Date[] = [];
  for (let t: Date | null = from; t && t.getTime() <= now.getTime(); t = cron.nextRun(t)) {
    if (times.length === limit) return { times, complete: false };
    times.push(t);
  }
  return { times, complete: true };
}

/** The idempotency key of one firing: the schedule and its time, so that exactly one task exists per firing. */
export function firingKey(schedule: string, fireAt: Date): string {
  return `schedule:${schedule}:${fireAt.toISOString()}`;
}
