-- WAL per step (issue 20): the unique index on weft.tasks.idempotency_key
-- held an entry for every task, also the (most) tasks created without a key,
-- and took a new one with every non-HOT update of the task row (its state
-- changes): two btree inserts per task for nothing. It becomes a partial
-- unique index over the tasks that have a key, under the same name (the
-- create statements recognise a repeated key by it), so a task without a key
-- writes no entry at all. Uniqueness is unchanged: NULLs never conflicted.
--
-- (009 is taken by child workflows, which land separately.)
--
-- Never edit this file once it has landed: add the next number instead.

CREATE UNIQUE INDEX tasks_idempotency_key_partial ON weft.tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
ALTER TABLE weft.tasks DROP CONSTRAINT tasks_idempotency_key_key;
ALTER INDEX weft.tasks_idempotency_key_partial RENAME TO tasks_idempotency_key_key;
