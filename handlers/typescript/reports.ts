/**
 * The nightly report of templates/nightly_report.yaml: the previous calendar
 * day in the context's time zone, then a summary naming it.
 */
import { defineHandlers, PermanentError } from '../../src/worker/sdk.js';

/** The calendar date (YYYY-MM-DD) of `at` in `timeZone`. */
function dateIn(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);
}

export const handlers = defineHandlers({
  'reports.period': (step) => {
    const timeZone = typeof step.context?.timezone === 'string' ? step.context.timezone : 'UTC';
    try {
      const day = dateIn(new Date(Date.now() - 24 * 3600_000), timeZone);
      return { day, timezone: timeZone };
    } catch {
      throw new PermanentError(`context.timezone ${JSON.stringify(timeZone)} is not a time zone; use an IANA name such as Europe/Berlin`);
    }
  },
  'reports.summary': (step) => {
    const period = step.dependency_results.period as { day: string; timezone: string };
    return { report: step.context?.report, day: period.day, title: `${String(step.context?.report)} report for ${period.day} (${period.timezone})` };
  },
});
