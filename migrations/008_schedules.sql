-- Schedules (issue 19): a template run on a cron expression in a time zone,
-- with a fixed context, an overlap policy and a catch-up policy. The
-- orchestrators' sweep fires them (src/orchestration/schedules.ts): it locks
-- the due rows FOR UPDATE SKIP LOCKED, creates one task per firing with the
-- idempotency key `schedule:<name>:<firing time>` (so a firing an orchestrator
-- died in the middle of is never created twice), then moves next_fire_at on.
-- The next firing time is computed in TypeScript with a cron library (time
-- zones and DST are its business), and stored here so that any orchestrator
-- can tell what is due with one index scan.
--
-- weft.schedule_events is the audit trail: every change (created, updated,
-- paused, resumed, deleted) and every firing (fired, skipped, missed), kept
-- after the schedule is deleted.
--
-- Never edit this file once it has landed: add the next number instead.

CREATE TABLE weft.schedules (
  name             text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,99}$'),
  namespace        text        NOT NULL,
  template         text        NOT NULL,
  -- NULL: the latest registered version at each firing
  version          text,
  cron             text        NOT NULL,
  timezone         text        NOT NULL,
  context          jsonb       NOT NULL DEFAULT '{}',
  overlap          text        NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'allow', 'cancel_previous')),
  catch_up         text        NOT NULL DEFAULT 'last' CHECK (catch_up IN ('none', 'last', 'all')),
  paused           boolean     NOT NULL DEFAULT false,
  -- NULL only while paused
  next_fire_at     timestamptz,
  last_fire_at     timestamptz,
  last_task_id     uuid,
  -- 'api' (POST /v1/schedules, weft schedules create) or 'template' (a template file's schedules: section)
  source           text        NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'template')),
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK (paused OR next_fire_at IS NOT NULL)
);
CREATE INDEX schedules_due ON weft.schedules (next_fire_at) WHERE NOT paused;

CREATE TABLE weft.schedule_events (
  id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  schedule         text        NOT NULL,
  kind             text        NOT NULL
                   CHECK (kind IN ('created', 'updated', 'paused', 'resumed', 'deleted', 'fired', 'skipped', 'missed')),
  -- the firing time (fired, skipped, missed: the first of the missed ones)
  fire_at          timestamptz,
  task_id          uuid,
  -- who changed the schedule, or the orchestrator that fired it
  actor            text,
  -- why: { reason, count, last, cancelled_task, ... }
  detail           jsonb,
  at               timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX schedule_events_by_schedule ON weft.schedule_events (schedule, id);
-- One task per firing, whatever the number of orchestrators: the task's
-- idempotency key says so too; this keeps the audit trail equally honest.
CREATE UNIQUE INDEX schedule_events_one_firing ON weft.schedule_events (schedule, fire_at) WHERE kind = 'fired';
