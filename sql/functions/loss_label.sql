-- How a loss reads, from its entry in steps.errors: crashed (SIGSEGV), killed
-- (SIGKILL), exited (code 70), or went silent.
CREATE OR REPLACE FUNCTION weft.loss_label(p_loss jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT CASE p_loss->>'cause'
           WHEN 'crashed' THEN format('crashed (%s)', p_loss->>'signal')
           WHEN 'killed' THEN format('killed (%s)', p_loss->>'signal')
           WHEN 'exited' THEN format('exited (code %s)', p_loss->>'code')
           ELSE 'went silent (killed from outside, crashed with no supervisor watching, or cut off from the database)' END
$fn$;
