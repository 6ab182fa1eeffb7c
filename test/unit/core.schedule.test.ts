import { describe, expect, it } from 'vitest';
import { MAX_CATCH_UP, firingKey, nextFiring, nextFirings, planFirings, scheduleSpec } from '../../src/core/schedule.js';
import { ValidationError } from '../../src/shared/errors.js';
import { parseTemplate } from '../../src/core/template/parse.js';
import { TemplateError } from '../../src/core/template/errors.js';

const iso = (ds: Date[]) => ds.map((d) => d.toISOString());
const berlin = (cron: string) => ({ cron, timezone: 'Europe/Berlin' });

describe('next firings across DST in Europe/Berlin', () => {
  it('09:00 on weekdays stays 09:00 local: 08:00Z in winter, 07:00Z in summer (spring forward 2026-03-29)', () => {
    const runs = nextFirings(berlin('0 9 * * MON-FRI'), new Date('2026-03-26T12:00:00Z'), 3);
    expect(iso(runs)).toEqual(['2026-03-27T08:00:00.000Z', '2026-03-30T07:00:00.000Z', '2026-03-31T07:00:00.000Z']);
  });

  it('09:00 after fall back (2026-10-25) is 08:00Z again', () => {
    const runs = nextFirings(berlin('0 9 * * *'), new Date('2026-10-24T12:00:00Z'), 2);
    expect(iso(runs)).toEqual(['2026-10-25T08:00:00.000Z', '2026-10-26T08:00:00.000Z']);
  });

  it('02:30, which the spring-forward night skips, fires once that night, an hour later (03:30 CEST = 01:30Z)', () => {
    const runs = nextFirings(berlin('30 2 * * *'), new Date('2026-03-28T12:00:00Z'), 2);
    expect(iso(runs)).toEqual(['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z']);
  });

  it('02:30, which the fall-back night repeats, fires once that night', () => {
    const runs = nextFirings(berlin('30 2 * * *'), new Date('2026-10-24T12:00:00Z'), 2);
    expect(runs).toHaveLength(2);
    expect(runs[1]!.getTime() - runs[0]!.getTime()).toBeGreaterThanOrEqual(24 * 3600_000);
    expect(iso(runs)[1]).toBe('2026-10-26T01:30:00.000Z');
  });

  it('six fields: seconds first', () => {
    expect(nextFiring({ cron: '*/2 * * * * *', timezone: 'UTC' }, new Date('2026-01-01T00:00:00.500Z'))!.toISOString()).toBe('2026-01-01T00:00:02.000Z');
  });
});

describe('scheduleSpec', () => {
  const ok = { name: 'nightly', template: 'reports/nightly_report@1.0.0', cron: '0 2 * * *' };

  it('reads the template reference and fills the defaults', () => {
    expect(scheduleSpec(ok)).toEqual({
      name: 'nightly',
      namespace: 'reports',
      template: 'nightly_report',
      version: '1.0.0',
      cron: '0 2 * * *',
      timezone: 'UTC',
      context: {},
      overlap: 'skip',
      catch_up: 'last',
    });
  });

  it.each([
    [{ ...ok, cron: '61 * * * *' }, 'cron', /cron "61 \* \* \* \*" is not a cron expression/],
    [{ ...ok, cron: 'every day' }, 'cron', /five fields "minute hour day-of-month month day-of-week"/],
    [{ ...ok, timezone: 'Europe/Atlantis' }, 'timezone', /timezone "Europe\/Atlantis" is not a time zone .* IANA name/],
    [{ ...ok, template: 'nightly' }, 'template', /is not NAMESPACE\/NAME\[@VERSION\]/],
    [{ ...ok, name: 'Nightly Report' }, 'name', /is not a schedule name/],
    [{ ...ok, overlap: 'queue' }, 'overlap', /overlap must be one of skip, allow, cancel_previous, got "queue"/],
    [{ ...ok, catch_up: 'some' }, 'catch_up', /catch_up must be one of none, last, all/],
  ])('refuses %j naming the field', (input, path, message) => {
    let err: unknown;
    try {
      scheduleSpec(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).path).toBe(path);
    expect((err as ValidationError).message).toMatch(message);
  });

  it('prefixes the field path (a template file names schedules[i])', () => {
    expect(() => scheduleSpec({ ...ok, cron: 'x' }, 'schedules[1].')).toThrow(expect.objectContaining({ path: 'schedules[1].cron' }));
  });
});

describe('planFirings', () => {
  const every = (catch_up: 'none' | 'last' | 'all') => ({ cron: '* * * * * *', timezone: 'UTC', catch_up });
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

  it('fires every due firing within the grace whatever the policy, and moves next past now', () => {
    const plan = planFirings(every('none'), t(10), new Date(t(12).getTime() + 300), 5_000);
    expect(iso(plan.fire)).toEqual(iso([t(10), t(11), t(12)]));
    expect(plan.missed).toBeUndefined();
    expect(plan.next).toEqual(t(13));
  });

  it('catch_up none: late firings are missed, on-time ones fire', () => {
    const plan = planFirings(every('none'), t(0), t(10), 2_000);
    expect(iso(plan.fire)).toEqual(iso([t(8), t(9), t(10)]));
    expect(plan.missed).toEqual({ count: 8, first: t(0), last: t(7) });
    expect(plan.caughtUp).toBe(0);
  });

  it('catch_up last: the latest late firing fires, the older are missed', () => {
    const plan = planFirings(every('last'), t(0), t(10), 2_000);
    expect(iso(plan.fire)).toEqual(iso([t(7), t(8), t(9), t(10)]));
    expect(plan.missed).toEqual({ count: 7, first: t(0), last: t(6) });
    expect(plan.caughtUp).toBe(1);
  });

  it('catch_up all: every late firing fires, up to MAX_CATCH_UP (the latest)', () => {
    const small = planFirings(every('all'), t(0), t(10), 2_000);
    expect(small.fire).toHaveLength(11);
    expect(small.missed).toBeUndefined();
    expect(small.caughtUp).toBe(8);
    // t(0) … t(150): 150 late (grace 0), the last on time.
    const big = planFirings(every('all'), t(0), t(150), 0);
    expect(big.fire).toHaveLength(MAX_CATCH_UP + 1);
    expect(big.missed).toEqual({ count: 50, first: t(0), last: t(49) });
    expect(big.fire[0]).toEqual(t(50));
  });

  it('after a downtime too long to walk, it jumps towards now: the latest firings still follow the policy, the count is a lower bound', () => {
    const week = 7 * 24 * 3600;
    const plan = planFirings({ ...every('last'), timezone: 'Europe/Berlin' }, t(0), t(week), 2_000);
    expect(iso(plan.fire)).toEqual(iso([t(week - 3), t(week - 2), t(week - 1), t(week)]));
    expect(plan.missed!.more).toBe(true);
    expect(plan.missed!.first).toEqual(t(0));
    expect(plan.next).toEqual(t(week + 1));
  });
});

it('a firing key is the schedule and its instant', () => {
  expect(firingKey('nightly', new Date('2026-03-29T01:30:00Z'))).toBe('schedule:nightly:2026-03-29T01:30:00.000Z');
});

describe('a template file’s schedules: section', () => {
  const yaml = (schedules: string) =>
    `namespace: reports\nname: nightly\nversion: 1.0.0\nsteps:\n  - { name: only, handler: r.only }\nschedules:\n${schedules}`;

  it('is kept on the definition', () => {
    const def = parseTemplate(yaml('  - { name: nightly, cron: "0 2 * * *", timezone: Europe/Berlin, context: { a: 1 }, catch_up: all }'), 'n.yaml');
    expect(def.schedules).toEqual([{ name: 'nightly', cron: '0 2 * * *', timezone: 'Europe/Berlin', context: { a: 1 }, catch_up: 'all' }]);
  });

  it('names the line, the field and the fix of a bad cron, zone, policy or a name used twice', () => {
    let err: TemplateError | undefined;
    try {
      parseTemplate(
        yaml(
          [
            '  - { name: a, cron: "0 25 * * *" }',
            '  - { name: b, cron: "0 2 * * *", timezone: Europe/Nowhere }',
            '  - { name: a, cron: "0 2 * * *", overlap: queue }',
          ].join('\n'),
        ),
        'n.yaml',
      );
    } catch (e) {
      err = e as TemplateError;
    }
    expect(err).toBeInstanceOf(TemplateError);
    const byPath = Object.fromEntries(err!.problems.map((p) => [p.path, p]));
    expect(byPath['schedules[0].cron']).toMatchObject({
      line: 7,
      message: expect.stringMatching(/^schedules\[0\]\.cron "0 25 \* \* \*" is not a cron expression/),
    });
    expect(byPath['schedules[1].timezone']!.message).toMatch(/^schedules\[1\]\.timezone "Europe\/Nowhere" is not a time zone/);
    expect(byPath['schedules[2].overlap']!.message).toMatch(/not a known .*allowed: skip, allow, cancel_previous/);
    expect(byPath['schedules[2].name']!.message).toBe('schedules[2].name "a" is used twice');
  });
});
