/**
 * Landed migrations are never edited (issue 17): a database applied them once and records their checksum, so an edit
 * reaches users as a refusal to start (src/store/migrate.ts). This pins each file's sha256 so an edit fails here, in CI.
 * A function's body changes in sql/functions/, schema in the next numbered migration; when a migration lands, add its pin.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = join(import.meta.dirname, '..', '..', 'migrations');

const LANDED: Record<string, string> = {
  '001_initial.sql': '04475b8fd5042a7670385b7bedf10e0b6ff72dba2ae3ac742a36a5be819524a0',
  '002_step_boundary.sql': 'a7227d6fe92625052386f8444c740dd2b7bb26c00f66ef8f6f9e280e6785f486',
  '003_api_tokens.sql': '22212c99f2b3f357765c4fe99a106d075edaa8c3b7181d96ae75e31e25b26778',
  '004_control.sql': 'ce18eaaa20d4b71ba3f715d4172a79e9b5c69d748ead7c7415f0f9fc6aed9caf',
  '005_error_history_and_losses.sql': 'c37721d1040fba0d66ea3958940a183cf7ee66e0f529dd2e062edcc2b3f91059',
  '006_cancel_reason.sql': 'a4c7adb36c2bf8cd4b505dcc642a518e438b31f20a9804394f505806883ccff8',
  '007_waits.sql': '20d7ea36bb878f0be4fcf7fd3d0f11c626129c7f94d5b08acd2799699347a3ab',
  '008_schedules.sql': '758583e6900f26b6dc3a7e93532bf88210749e35dddc596894c6ff38af9d21be',
  '009_child_workflows.sql': '144dfc5b6708311a16dcc3834bd0a7babd423c0016bb3a078c11cceaace6b211',
  '010_lean_indexes.sql': '7e6b0381549e521eb9d575e0978cab02e2bb6621f7148adfd0f7e88893e5dd83',
  '011_waiter_order.sql': 'ebc26010355a397dbd430d098410eb88795a0af5162cf598a7f150d43bdfa966',
};

const sha256 = (file: string) =>
  createHash('sha256')
    .update(readFileSync(join(DIR, file)))
    .digest('hex');

describe('landed migrations', () => {
  it.each(Object.keys(LANDED))('%s is byte-identical to the file that landed (change sql/functions/ or add a migration instead)', (file) => {
    expect(sha256(file)).toBe(LANDED[file]);
  });

  it('every migration in migrations/ is pinned here (pin a new one when it lands)', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.sql'));
    expect(files.filter((f) => !(f in LANDED))).toEqual([]);
  });
});
