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

export function time(v: string | Date | null | undefined): string {
  if (!v) return '–';
  const d = new Date(v);
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  });
}

export function ago(msAgo: number): string {
  if (msAgo < 1500) return 'just now';
  if (msAgo < 90_000) return `${Math.round(msAgo / 1000)} s ago`;
  if (msAgo < 5_400_000) return `${Math.round(msAgo / 60_000)} min ago`;
  return `${Math.round(msAgo / 3_600_000)} h ago`;
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
