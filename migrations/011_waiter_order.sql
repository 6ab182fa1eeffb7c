-- A worker's waiter registration (weft.queue_waiters) is renewed or removed
-- by each of its statements that claims from the PostgreSQL queue: its
-- consumer's claims and its finishes. Two can be in flight at once, each
-- filling only the free slots it was given. One that filled its share removed
-- the registration even when the other, committed just before, had come back
-- short and registered for slots the first never saw: the worker then had
-- free slots and no registration, and a step enqueued next waited for its
-- poll (a second, by default). Seen as `enqueued → running` of ~990 ms for
-- some of the steps of 2 single-step tasks in flight over REST.
--
-- Each statement now carries its number in the consumer's order of sending
-- and the newest number below which every statement had come back when it was
-- sent (src/store/claim.ts, WaiterRegistration). A registration remembers
-- the number of the statement that made it, and a statement that filled its
-- room removes only a registration made by one that had come back before it
-- was sent (whose free slots it was given).
--
-- The functions that take the two numbers get new signatures: the old ones
-- are dropped here and sql/functions creates the new ones.
--
-- Never edit this file once it has landed: add the next number instead.

ALTER TABLE weft.queue_waiters ADD COLUMN seq bigint NOT NULL DEFAULT 0;

DROP FUNCTION weft.register_waiter(text[], text, text, integer, boolean);
DROP FUNCTION weft.claim_queued(text, text[], integer, text, text, integer);
DROP FUNCTION weft.finish_steps(text, uuid[], jsonb, jsonb, jsonb, text[], integer, boolean, boolean, text, text, integer);
