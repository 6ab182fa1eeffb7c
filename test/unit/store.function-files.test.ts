/**
 * sql/functions (issue 17): how function files are read, checked and ordered before the migrator applies them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFunctionFiles } from '../../src/store/function-files.js';
import { DatabaseError } from '../../src/shared/errors.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A sql/functions directory holding `files` (name → requires). */
function functionsDir(files: Record<string, string[] | string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-fn-'));
  dirs.push(dir);
  for (const [name, spec] of Object.entries(files)) {
    const text =
      typeof spec === 'string'
        ? spec
        : `-- ${name}\n${spec.length ? `-- requires: ${spec.join(', ')}\n` : ''}CREATE OR REPLACE FUNCTION weft.${name}() RETURNS int LANGUAGE sql AS $fn$ SELECT 1 $fn$;\n`;
    writeFileSync(join(dir, `${name}.sql`), text);
  }
  return dir;
}

async function failure(dir: string): Promise<Error> {
  return readFunctionFiles(dir).then(
    () => {
      throw new Error('expected readFunctionFiles to fail');
    },
    (err: Error) => err,
  );
}

describe('readFunctionFiles', () => {
  it("weft's own files: each defines the function it is named after, helpers before the files that require them", async () => {
    const files = await readFunctionFiles();
    expect(files.map((f) => f.name)).toContain('finish_steps');
    const position = new Map(files.map((f, i) => [f.name, i]));
    for (const f of files) for (const r of f.requires) expect(position.get(r), `${f.name} requires ${r}`).toBeLessThan(position.get(f.name)!);
    for (const f of files) expect(f.checksum).toMatch(/^[0-9a-f]{16}$/);
  });

  it('orders by name, except that a file comes after every file its "-- requires:" line names', async () => {
    const dir = functionsDir({ alpha: ['zeta', 'mid'], mid: [], zeta: ['mid'], beta: [] });
    const files = await readFunctionFiles(dir);
    expect(files.map((f) => f.name)).toEqual(['beta', 'mid', 'zeta', 'alpha']);
    expect(files.find((f) => f.name === 'alpha')!.requires).toEqual(['zeta', 'mid']);
  });

  it('a requirement that is not a file is an error naming both', async () => {
    const err = await failure(functionsDir({ finish: ['event_rows'] }));
    expect(err).toBeInstanceOf(DatabaseError);
    expect(err.message).toBe(
      'sql/functions/finish.sql requires event_rows, which is not a function file: its "-- requires:" line names other files of sql/functions, without .sql',
    );
  });

  it('a cycle of requirements is an error naming the files in it', async () => {
    const err = await failure(functionsDir({ a: ['b'], b: ['a'], c: [] }));
    expect(err.message).toBe('sql/functions: the "-- requires:" lines of a, b form a cycle; a helper cannot require its caller');
  });

  it('a file that does not define the function it is named after is refused', async () => {
    const err = await failure(functionsDir({ claim: 'CREATE OR REPLACE FUNCTION weft.claim_steps() RETURNS int LANGUAGE sql AS $fn$ SELECT 1 $fn$;\n' }));
    expect(err.message).toBe(
      'sql/functions/claim.sql does not define weft.claim: a function file holds "CREATE OR REPLACE FUNCTION weft.claim(...)" (rename the file after the function it defines)',
    );
  });

  it('a CREATE FUNCTION without OR REPLACE is refused: the file is applied again at every change', async () => {
    const err = await failure(
      functionsDir({
        pair: [
          'CREATE OR REPLACE FUNCTION weft.pair() RETURNS int LANGUAGE sql AS $fn$ SELECT 1 $fn$;',
          'create function weft.pair_helper() RETURNS int LANGUAGE sql AS $fn$ SELECT 2 $fn$;',
        ].join('\n'),
      }),
    );
    expect(err.message).toMatch(/^sql\/functions\/pair.sql has a CREATE FUNCTION without OR REPLACE/);
  });

  it('a file name that is not a lower-case function name is refused', async () => {
    const err = await failure(functionsDir({ 'Finish-Steps': [] }));
    expect(err.message).toBe('sql/functions/Finish-Steps.sql: a function file is named after its function in lower case (e.g. finish_steps.sql)');
  });
});

/**
 * The planner pins of migration 002 (jit off, generic plans, index scans and
 * nested loops only: 002's header says why, with figures). They live in the
 * function files now, where an edit could drop one silently.
 */
const PINS = [
  'jit = off',
  'plan_cache_mode = force_generic_plan',
  'enable_seqscan = off',
  'enable_bitmapscan = off',
  'enable_hashjoin = off',
  'enable_mergejoin = off',
];
/** The functions 002 pinned, and the claim helpers finish_steps, claim_queued and claim_ids now run their claims through. */
const PINNED = [
  'create_task',
  'claim_queued',
  'claim_ids',
  'finish_steps',
  'wake',
  'dispatch_due_retries',
  'requeue_lost_steps',
  'redispatch_stale',
  'delete_expired_tasks',
  'pick_queued',
  'claim_steps',
  // And those that compare a state with a plpgsql variable so that their rows are found by id, never through a partial
  // index on state (so do some above): only a generic plan keeps the planner from proving the index's predicate from
  // the variable's value (sql/functions/claim_steps.sql; test/integration/store.plans.test.ts).
  'claimed_events',
  'release_steps',
  'complete_waiting',
  'finish_workflow_steps',
  'link_child',
  'fail_workflow_step',
  'fail_task',
  'cancel_task',
  'cancel_children',
  'retry_task',
  'start_due_tasks',
  // And the API's reads of one task: a prepared statement keeps the plan its connection first made, one made while
  // the tables were small read them whole (sql/functions/task_view.sql).
  'task_view',
  'task_state',
  'task_history',
];

/** The settings of each function's CREATE statement in `sql` (what comes between its name and its body). */
function headers(sql: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of sql.matchAll(/CREATE OR REPLACE FUNCTION weft\.(\w+)\s*\(([\s\S]*?)\bAS \$/g)) found.set(m[1]!, m[2]!.replace(/\s+/g, ' '));
  return found;
}

describe('planner pins', () => {
  it("the step boundary's functions keep every pin migration 002 gave them", async () => {
    const all = new Map<string, string>();
    for (const f of await readFunctionFiles()) for (const [name, header] of headers(f.sql)) all.set(name, header);
    for (const name of PINNED) {
      expect(all.has(name), `weft.${name} is defined in sql/functions`).toBe(true);
      for (const pin of PINS) expect(all.get(name), `weft.${name} keeps SET ${pin}`).toContain(`SET ${pin}`);
    }
  });
});
