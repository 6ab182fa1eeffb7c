/** Small formatting helpers shared by the views. */

export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v < 1) return `${v.toFixed(2)} ms`;
  if (v < 1000) return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(2)} s`;
  return `${Math.floor(v / 60_000)} min ${Math.round((v % 60_000) / 1000)} s`;
}

export function us(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v < 1000 ? `${v.toFixed(v < 10 ? 2 : 1)} µs` : ms(v / 1000);
}

/** How times are shown: in the browser's zone or in UTC (the header's switch; kept in this browser). */
export type Zone = 'local' | 'utc';
const ZONE_KEY = 'weft.zone';
let zone: Zone = localStorage.getItem(ZONE_KEY) === 'utc' ? 'utc' : 'local';

export function currentZone(): Zone {
  return zone;
}
export function setZone(z: Zone): void {
  zone = z;
  localStorage.setItem(ZONE_KEY, z);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Made once: building an Intl formatter costs far more than using one (a timeline names thousands of instants). */
let zoneFormat: Intl.DateTimeFormat | undefined;
/** The short name of the browser's zone at `d` ("CET", "GMT+5:30"). */
function localZoneName(d: Date): string {
  zoneFormat ??= new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' });
  return zoneFormat.formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? 'local';
}

function parts(v: string | Date, z: Zone) {
  const d = new Date(v);
  const u = z === 'utc';
  return {
    date: `${u ? d.getUTCFullYear() : d.getFullYear()}-${pad((u ? d.getUTCMonth() : d.getMonth()) + 1)}-${pad(u ? d.getUTCDate() : d.getDate())}`,
    clock: `${pad(u ? d.getUTCHours() : d.getHours())}:${pad(u ? d.getUTCMinutes() : d.getMinutes())}:${pad(u ? d.getUTCSeconds() : d.getSeconds())}`,
    ms: pad(d.getMilliseconds(), 3),
    get zone() {
      return u ? 'UTC' : localZoneName(d);
    },
  };
}

/** `2026-01-31 12:00:05 UTC`: a date and time in the chosen zone, which it names. */
export function time(v: string | Date | null | undefined): string {
  if (!v) return '–';
  const p = parts(v, zone);
  return `${p.date} ${p.clock} ${p.zone}`;
}

/** `2026-01-31 12:00:05.123 UTC`, to the millisecond, in `z` (default: the chosen zone). */
export function exactTime(v: string | Date, z: Zone = zone): string {
  const p = parts(v, z);
  return `${p.date} ${p.clock}.${p.ms} ${p.zone}`;
}

/** `12:00:05.123`: the time of day to the millisecond, for spans within a task. */
export function clockTime(v: string | Date | number): string {
  const p = parts(new Date(v), zone);
  return `${p.clock}.${p.ms}`;
}

/** Both zones to the millisecond: what a hover shows. */
export function bothZones(v: string | Date): string {
  return `${exactTime(v, 'utc')} · ${exactTime(v, 'local')}`;
}

export function ago(msAgo: number): string {
  if (Math.abs(msAgo) < 1500) return 'just now';
  if (msAgo < 0) return `in ${ago(-msAgo).replace(/ ago$/, '')}`;
  if (msAgo < 90_000) return `${Math.round(msAgo / 1000)} s ago`;
  if (msAgo < 5_400_000) return `${Math.round(msAgo / 60_000)} min ago`;
  if (msAgo < 172_800_000) return `${Math.round(msAgo / 3_600_000)} h ago`;
  return `${Math.round(msAgo / 86_400_000)} days ago`;
}

export function shortId(id: string): string {
  return id.slice(0, 8) + '…' + id.slice(-4);
}

export function json(v: unknown): string {
  return JSON.stringify(v, null, 2) ?? 'undefined';
}

/** Colours by state, shared by badges, DAG nodes and waterfall bars (see app.css). */
export function stateClass(state: string): string {
  return `st-${state.replace(/[^a-z_]/g, '')}`;
}
