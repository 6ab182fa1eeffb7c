import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseError } from '../shared/errors.js';
import { packageRoot } from '../shared/paths.js';

/**
 * One file of sql/functions: the current text of one PostgreSQL function (or
 * a small family), applied after the numbered migrations whenever its
 * checksum differs from the one the database recorded (sql/README.md).
 *
 * @example
 *   const files = await readFunctionFiles(); // [{ name: 'event_row', requires: [], ... }, ..., { name: 'finish_steps', ... }]
 */
export interface FunctionFile {
  /** The file name without `.sql`; the file defines weft.<name>. */
  name: string;
  sql: string;
  checksum: string;
  /** Other function files this one calls from a LANGUAGE sql body (checked when it is created): its `-- requires:` line. */
  requires: string[];
}

const NAME = /^[a-z][a-z0-9_]*$/;
const REQUIRES = /^-- requires:(.*)$/m;

/** The function files in the order they are applied: every file after the files it requires, otherwise by name. */
export async function readFunctionFiles(dir = join(packageRoot(), 'sql', 'functions')): Promise<FunctionFile[]> {
  const names = (await readdir(dir))
    .filter((f) => f.endsWith('.sql'))
    .map((f) => f.slice(0, -'.sql'.length))
    .sort();
  const files: FunctionFile[] = [];
  for (const name of names) {
    const sql = await readFile(join(dir, `${name}.sql`), 'utf8');
    files.push(parseFunctionFile(name, sql));
  }
  return inDependencyOrder(files);
}

function parseFunctionFile(name: string, sql: string): FunctionFile {
  const where = `sql/functions/${name}.sql`;
  if (!NAME.test(name)) throw new DatabaseError(`${where}: a function file is named after its function in lower case (e.g. finish_steps.sql)`);
  if (!sql.includes(`CREATE OR REPLACE FUNCTION weft.${name}(`)) {
    throw new DatabaseError(
      `${where} does not define weft.${name}: a function file holds "CREATE OR REPLACE FUNCTION weft.${name}(...)" ` +
        '(rename the file after the function it defines)',
    );
  }
  if (/^\s*CREATE\s+FUNCTION\b/im.test(sql)) {
    throw new DatabaseError(
      `${where} has a CREATE FUNCTION without OR REPLACE: a function file is applied again whenever it changes, so every ` +
        'function in it is written "CREATE OR REPLACE FUNCTION"',
    );
  }
  const line = REQUIRES.exec(sql)?.[1];
  const requires = line
    ? line
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
  return { name, sql, checksum: createHash('sha256').update(sql).digest('hex').slice(0, 16), requires };
}

/** A stable topological sort: alphabetical among files whose requirements are met. */
function inDependencyOrder(files: FunctionFile[]): FunctionFile[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  for (const f of files) {
    const unknown = f.requires.filter((r) => !byName.has(r));
    if (unknown.length) {
      throw new DatabaseError(
        `sql/functions/${f.name}.sql requires ${unknown.join(', ')}, which ${unknown.length === 1 ? 'is not a function file' : 'are not function files'}: ` +
          'its "-- requires:" line names other files of sql/functions, without .sql',
      );
    }
  }
  const ordered: FunctionFile[] = [];
  const placed = new Set<string>();
  while (ordered.length < files.length) {
    const next = files.find((f) => !placed.has(f.name) && f.requires.every((r) => placed.has(r)));
    if (!next) {
      const stuck = files.filter((f) => !placed.has(f.name)).map((f) => f.name);
      throw new DatabaseError(`sql/functions: the "-- requires:" lines of ${stuck.join(', ')} form a cycle; a helper cannot require its caller`);
    }
    ordered.push(next);
    placed.add(next.name);
  }
  return ordered;
}
