-- The entry a loss adds to steps.errors: attempt p_attempt lost its worker,
-- which exited as p_exit says (NULL: nobody saw it exit): "it crashed
-- (SIGSEGV)", "it was killed (SIGKILL)", "it exited (code 70)", "it went silent".
-- requires: loss_label
CREATE OR REPLACE FUNCTION weft.loss_entry(p_worker text, p_attempt integer, p_exit jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT e || jsonb_build_object('message', format('attempt %s lost its worker %s: it %s%s%s', p_attempt, coalesce(p_worker, '?'),
                                                   CASE WHEN e->>'cause' = 'killed' THEN 'was ' ELSE '' END, weft.loss_label(e),
                                                   CASE WHEN e ? 'seen_by' THEN format(', as %s saw', e->>'seen_by') ELSE '' END))
    FROM (SELECT jsonb_build_object('attempt', p_attempt, 'language', 'weft', 'class', 'WorkerLost', 'kind', 'worker_lost',
                                    'permanent', false, 'backtrace', '[]'::jsonb, 'worker', p_worker,
                                    'cause', coalesce(p_exit->>'cause', 'went silent'))
                 || jsonb_strip_nulls(jsonb_build_object('signal', p_exit->'signal', 'code', p_exit->'code', 'seen_by', p_exit->'seen_by')) AS e) AS x
$fn$;
