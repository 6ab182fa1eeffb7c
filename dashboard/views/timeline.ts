import { html } from 'htm/preact';
import { bothZones, clockTime, exactTime, ms } from '../format.js';
import { useNow } from '../hooks.js';
import type { Transition } from './history.js';

/** What a stretch of a step's time was spent on; each kind has its colour and its line in the legend. */
type Kind = 'start' | 'parents' | 'waiting' | 'queue' | 'running' | 'complete' | 'failed' | 'lost' | 'cancelled' | 'retry';

const LEGEND: Array<[Kind, string]> = [
  ['start', "waiting for the task's start time"],
  ['parents', 'waiting for parents'],
  ['waiting', 'sleeping or waiting for a signal'],
  ['queue', 'queued (waiting for a worker)'],
  ['running', 'running'],
  ['complete', 'run that succeeded'],
  ['failed', 'failed attempt'],
  ['retry', 'retry backoff'],
  ['lost', 'run lost or given back (no attempt used)'],
  ['cancelled', 'cancelled run'],
];

interface Segment {
  kind: Kind;
  start: number;
  end: number;
  attempt?: number;
  /** Still going (drawn to now). */
  open?: boolean;
}

/** The step fields the timeline reads (a step of GET /v1/tasks/:id). */
export interface TimedStep {
  id: string;
  name: string;
  state: string;
  attempts: number;
  parents: string[];
  created_at: string;
  enqueued_at: string | null;
  started_at: string | null;
  finished_at: string | null;
}

const at = (v: string) => new Date(v).getTime();
/**
 * A step whose parents were done when it was planned (a decision's branch, a
 * batch's workers) is created and queued by one statement, a moment apart: a
 * wait for parents shorter than this is that moment, not a wait.
 */
const NO_WAIT_MS = 2;

/**
 * What a step's time before its first queueing was: its parents' runs, or, for
 * a root step, its task's delayed start (a root step with neither is queued
 * as it is created: nothing to draw, however long the creating statement took).
 */
function preQueueKind(s: TimedStep, delayed: boolean): Kind | null {
  return s.parents.length > 0 ? 'parents' : delayed ? 'start' : null;
}

/** One run's stretch from a step's own fields: enough when it ran once. */
function segmentsOfStep(s: TimedStep, now: number, ended: number | null, delayed: boolean): Segment[] {
  const out: Segment[] = [];
  const created = at(s.created_at);
  const enq = s.enqueued_at ? at(s.enqueued_at) : null;
  const started = s.started_at ? at(s.started_at) : null;
  const finished = s.finished_at ? at(s.finished_at) : null;
  const before = preQueueKind(s, delayed);
  if (before && enq !== null && enq - created >= NO_WAIT_MS) out.push({ kind: before, start: created, end: enq });
  // Never queued: still waiting for its parents (or its start), or waited until its task ended (cancelled with it).
  if (before && enq === null && started === null && s.state === 'pending') out.push({ kind: before, start: created, end: now, open: true });
  if (before && enq === null && started === null && s.state === 'cancelled' && ended !== null) out.push({ kind: before, start: created, end: ended });
  if (enq !== null && (started === null || started >= enq))
    out.push({ kind: 'queue', start: enq, end: started ?? now, open: started === null && s.state === 'enqueued' });
  if (started !== null) {
    const kind: Kind =
      s.state === 'complete' || s.state === 'succeeded' ? 'complete' : s.state === 'running' ? 'running' : s.state === 'cancelled' ? 'cancelled' : 'failed';
    out.push({ kind, start: started, end: finished ?? now, attempt: s.attempts, open: finished === null && s.state === 'running' });
  }
  return out.filter((x) => x.end >= x.start);
}

/**
 * Every stretch of a step from its transitions (GET /v1/tasks/:id/history):
 * each attempt's queue wait and run, failed attempts, the backoff before a
 * retry, runs lost with their worker, and what is still going (to now).
 */
function segmentsOfHistory(rows: Transition[], now: number, before: Kind | null): Segment[] {
  const out: Segment[] = [];
  let open: Omit<Segment, 'end'> | null = null;
  for (const r of [...rows].sort((a, b) => a.seq - b.seq)) {
    const t = at(r.at);
    const reason = r.metadata?.reason;
    if (open && r.from !== 'succeeded') {
      // A run ends as what it came to: succeeded, failed, lost or given back (no attempt used), cancelled.
      let kind = open.kind;
      if (r.from === 'running') {
        if (r.to === 'complete' || r.to === 'succeeded') kind = 'complete';
        else if (r.to === 'cancelled') kind = 'cancelled';
        else if (r.to === 'enqueued' || (r.to === 'waiting_retry' && reason !== undefined)) kind = 'lost';
        else kind = 'failed';
      }
      if (kind !== 'parents' || t - open.start >= NO_WAIT_MS) out.push({ ...open, kind, end: t });
      open = null;
    }
    if (r.to === 'pending') open = before ? { kind: before, start: t } : null;
    else if (r.to === 'waiting') open = { kind: 'waiting', start: t };
    else if (r.to === 'enqueued') open = { kind: 'queue', start: t };
    else if (r.to === 'running') open = { kind: 'running', start: t, attempt: typeof r.metadata?.attempt === 'number' ? r.metadata.attempt : undefined };
    else if (r.to === 'waiting_retry') open = { kind: 'retry', start: t };
  }
  if (open) out.push({ ...open, end: now, open: true });
  return out;
}

const LEGEND_LABEL = new Map(LEGEND);

/** What a stretch was and when, to the millisecond: its hover text (the first line is its accessible name too). */
function segmentTitle(name: string, g: Segment): string {
  return `${name}: ${LEGEND_LABEL.get(g.kind)}${g.attempt ? `, attempt ${g.attempt}` : ''} (${ms(g.end - g.start)})\n${clockTime(g.start)} → ${g.open ? 'now' : clockTime(g.end)}\nfrom ${exactTime(new Date(g.start))}`;
}

/**
 * Every step on one time axis from the task's creation: waiting for parents,
 * queue wait and run of each attempt, failed attempts and the retry backoff
 * between them (from the task's history when a step ran more than once),
 * growing while the task runs. Each stretch names its times on hover.
 */
export function Waterfall(props: {
  steps: TimedStep[];
  createdAt: string;
  completedAt: string | null;
  /** The task was asked to start later (its run_at): its root steps waited for that time. */
  delayed: boolean;
  active: boolean;
  /** Transitions by step name, when read (steps that ran more than once need them). */
  history?: Map<string, Transition[]>;
  selected?: string;
  onSelect: (name: string) => void;
}) {
  const now = useNow(1_000, props.active);
  const t0 = at(props.createdAt);
  const rows = props.steps.map((s) => {
    const h = props.history?.get(s.name);
    const segments = h?.length
      ? segmentsOfHistory(h, now, preQueueKind(s, props.delayed))
      : segmentsOfStep(s, now, props.completedAt ? at(props.completedAt) : null, props.delayed);
    return { s, segments };
  });
  const end = Math.max(props.completedAt && !props.active ? at(props.completedAt) : now, ...rows.flatMap((r) => r.segments.map((g) => g.end)));
  const total = Math.max(1, end - t0);
  const pct = (t: number) => (100 * (t - t0)) / total;
  // In the order the steps became ready (queued or claimed), the way they ran.
  const ready = (r: (typeof rows)[number]) => r.segments.find((g) => g.kind !== 'parents' && g.kind !== 'start')?.start ?? Infinity;
  rows.sort((a, b) => ready(a) - ready(b) || at(a.s.created_at) - at(b.s.created_at) || a.s.name.localeCompare(b.s.name));
  return html`<div
    class="waterfall"
    role="table"
    aria-label="Step timings: waiting for the start or for parents, sleeping or waiting for a signal, queue wait, each attempt's run, retry backoff"
  >
    <div class="wf-row wf-axis" role="row">
      <span role="columnheader">step</span
      ><span role="columnheader" class="wf-scale" title=${`0 = task created, ${bothZones(props.createdAt)}`}
        ><span>0</span><span>${ms(total / 2)}</span><span data-total>${ms(total)}</span></span
      >
    </div>
    <div class="wf-rows">
      ${rows.map(
        ({ s, segments }) =>
          html`<div key=${s.id} role="row" class=${`wf-row${props.selected === s.name ? ' selected' : ''}`} data-wf-step=${s.name}>
            <button role="cell" class="link wf-name" title=${s.name} onClick=${() => props.onSelect(s.name)}>${s.name}</button>
            <span role="cell" class="wf-track" aria-label=${segments.map((g) => segmentTitle(s.name, g).split('\n', 1)[0]).join('; ')}>
              ${segments.map(
                (g, i) =>
                  html`<span
                    key=${i}
                    class=${`wf-seg wf-${g.kind}`}
                    data-kind=${g.kind}
                    data-attempt=${g.attempt}
                    title=${segmentTitle(s.name, g)}
                    style=${`left:${pct(g.start)}%;width:${Math.max(g.kind === 'parents' || g.kind === 'start' ? 0 : 0.4, pct(g.end) - pct(g.start))}%`}
                  ></span>`,
              )}
            </span>
          </div>`,
      )}
    </div>
    <ul class="wf-legend muted" aria-label="Legend">
      ${LEGEND.map(([k, label]) => html`<li data-kind=${k}><span class=${`wf-key wf-${k}`}></span> ${label}</li>`)}
    </ul>
  </div>`;
}
