-- When a `sleep` or `wait` step that enters `waiting` now is due (its
-- steps.run_after), from its steps.wait: a sleep of {ms} after now; a wait's
-- {timeout_ms} after now, or never (NULL) without a timeout. A sleep `until` a
-- value of the context or of a parent's result is due at once: the value is
-- read by weft.wake_waiting, which sets the real time (a parent's result is not
-- visible inside the finish statement that releases this step).
CREATE OR REPLACE FUNCTION weft.wait_deadline(p_wait jsonb)
RETURNS timestamptz
LANGUAGE sql VOLATILE AS $fn$
  SELECT CASE WHEN p_wait ? 'ms' THEN clock_timestamp() + make_interval(secs => (p_wait->>'ms')::float8 / 1000.0)
              WHEN p_wait ? 'until' THEN clock_timestamp()
              WHEN p_wait ? 'timeout_ms' THEN clock_timestamp() + make_interval(secs => (p_wait->>'timeout_ms')::float8 / 1000.0)
         END
$fn$;

-- A sleep's `until` value: the text at p_wait.path in the task's context, or in
-- the result of the parent step p_wait.step. NULL when there is none.
CREATE OR REPLACE FUNCTION weft.wait_until_value(p_task uuid, p_wait jsonb)
RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT CASE WHEN p_wait->>'from' = 'context'
              THEN (SELECT t.context #>> ARRAY(SELECT jsonb_array_elements_text(p_wait->'path')) FROM weft.tasks t WHERE t.id = p_task)
              ELSE (SELECT s.result #>> ARRAY(SELECT jsonb_array_elements_text(p_wait->'path'))
                      FROM weft.steps s WHERE s.task_id = p_task AND s.name = p_wait->>'step')
         END
$fn$;

-- An RFC 3339 time with its zone (2026-12-24T09:00:00Z, 2026-12-24 09:00:00+01:00),
-- or NULL for anything else: a time without a zone would depend on the
-- session's TimeZone, and PostgreSQL's other spellings ('now', 'epoch') are
-- not times a context should carry.
CREATE OR REPLACE FUNCTION weft.rfc3339_time(p_text text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
  IF p_text IS NULL OR p_text !~ '^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})$' THEN
    RETURN NULL;
  END IF;
  RETURN p_text::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
  RETURN NULL;
END $fn$;
