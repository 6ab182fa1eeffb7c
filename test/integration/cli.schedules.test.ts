/**
 * `weft schedules create|list|pause|resume|delete` as real processes, on
 * the database directly (no WEFT_ORCHESTRATOR_URL), and their errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { registerTemplate } from '../../src/store/templates.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { packageRoot } from '../../src/shared/paths.js';
import { weftCommand as weft } from '../support/weft-process.js';

describe('weft schedules from the command line', () => {
  let tdb: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    env = { WEFT_DATABASE_URL: tdb.url };
    await registerTemplate(
      tdb.db,
      parseTemplate('namespace: t_cli_sched\nname: report\nversion: 1.0.0\nsteps:\n  - { name: only, handler: test.report }', 'report.yaml'),
    );
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  it('creates, lists, pauses, resumes and deletes a schedule', async () => {
    const created = await weft(
      [
        'schedules',
        'create',
        'weekday_report',
        '--template',
        't_cli_sched/report',
        '--cron',
        '0 9 * * MON-FRI',
        '--timezone',
        'Europe/Berlin',
        '--context',
        '{"kind":"daily"}',
      ],
      env,
    );
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(
      /^weekday_report {2}t_cli_sched\/report {2}"0 9 \* \* MON-FRI" Europe\/Berlin {2}overlap=skip catch_up=last {2}next 20\d\d-/,
    );

    const list = await weft(['schedules', 'list', '--json'], env);
    expect(list.code).toBe(0);
    const [s] = JSON.parse(list.stdout).schedules;
    expect(s).toMatchObject({ name: 'weekday_report', context: { kind: 'daily' }, paused: false, source: 'api' });
    expect(s.next_firings).toHaveLength(5);

    expect((await weft(['schedules', 'pause', 'weekday_report'], env)).stdout).toMatch(/ {2}paused\n$/);
    expect((await weft(['schedules', 'resume', 'weekday_report'], env)).stdout).toMatch(/ {2}next 20\d\d-/);
    expect((await weft(['schedules', 'delete', 'weekday_report'], env)).stdout).toBe('schedule weekday_report deleted\n');

    const { rows } = await tdb.db.query<{ kind: string; actor: string }>(
      `SELECT kind, actor FROM weft.schedule_events WHERE schedule = 'weekday_report' ORDER BY id`,
    );
    expect(rows.map((r) => r.kind)).toEqual(['created', 'paused', 'resumed', 'deleted']);
    expect(rows.every((r) => r.actor.startsWith('cli:'))).toBe(true);
    expect((await weft(['schedules', 'list'], env)).stdout).toMatch(/^no schedules; create one with/);
  }, 120_000);

  it('names what is wrong: a bad cron, an unknown zone, an unknown template, an unknown schedule', async () => {
    const base = ['schedules', 'create', 'bad', '--template', 't_cli_sched/report', '--cron', '0 9 * * *'];
    const cron = await weft([...base.slice(0, 5), '--cron', '0 9 * *'], env);
    expect(cron.code).toBe(1);
    expect(cron.stderr).toMatch(/^weft: cron "0 9 \* \*" is not a cron expression/);
    const zone = await weft([...base, '--timezone', 'Berlin'], env);
    expect(zone.stderr).toMatch(/^weft: timezone "Berlin" is not a time zone this system knows; use an IANA name such as Europe\/Berlin/);
    const template = await weft(['schedules', 'create', 'bad', '--template', 't_cli_sched/nope', '--cron', '0 9 * * *'], env);
    expect(template.stderr).toMatch(/^weft: template: no template t_cli_sched\/nope is registered; namespace t_cli_sched has: report@1.0.0/);
    const missing = await weft(['schedules', 'pause', 'nope'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('weft: no schedule "nope"; GET /v1/schedules (or weft schedules list) lists them\n');
  }, 120_000);
});
