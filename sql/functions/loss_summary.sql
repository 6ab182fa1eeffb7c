-- "3 crashed (SIGSEGV), 2 went silent (...)": the causes of the latest
-- p_losses losses in p_errors, most frequent first. Losses from before this
-- migration have no entry and are counted as not recorded.
-- requires: loss_label
CREATE OR REPLACE FUNCTION weft.loss_summary(p_errors jsonb, p_losses integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
  WITH recent AS (
    SELECT a.x FROM jsonb_array_elements(coalesce(p_errors, '[]'::jsonb)) WITH ORDINALITY AS a(x, n)
     WHERE a.x->>'kind' = 'worker_lost' ORDER BY a.n DESC LIMIT p_losses),
  counted AS (
    SELECT weft.loss_label(x) AS label, count(*) AS k FROM recent GROUP BY 1
    UNION ALL
    SELECT 'not recorded (lost before weft recorded why)', p_losses - (SELECT count(*) FROM recent)
     WHERE p_losses > (SELECT count(*) FROM recent))
  SELECT string_agg(format('%s %s', k, label), ', ' ORDER BY k DESC, label) FROM counted
$fn$;
