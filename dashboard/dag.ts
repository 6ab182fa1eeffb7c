import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import dagre from '@dagrejs/dagre';
import { stateClass } from './format.js';

export interface DagNode {
  id: string;
  label: string;
  sub?: string;
  state?: string;
  /** A template step with no step in the task (a branch not taken, not yet expanded). */
  ghost?: boolean;
  /** Nodes with the same group (e.g. the batch workers of one template step) collapse together; others by shape. */
  group?: string;
}
export interface DagEdge {
  from: string;
  to: string;
}

const NODE_W = 176;
const NODE_H = 46;
const PAD_X = 10;
/** Siblings with the same parents and children (or the same group) collapse into one node from this many on. */
const FANOUT_MIN = 10;
/** The canvas's height bounds (px); its width is its container's. */
const MIN_H = 160;
const MAX_H = 560;
/** Fitting never shrinks text below this scale; a bigger graph is shown from its top (its roots) and panned. */
const MIN_FIT_SCALE = 0.45;
const ZOOM_STEP = 1.25;
/** The fonts of .dag-label and .dag-sub (app.css), for measuring what fits in a node. */
const LABEL_FONT = '600 12.5px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const SUB_FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

let measurer: CanvasRenderingContext2D | null | undefined;
const fitted = new Map<string, string>();

/** `text`, cut with an ellipsis to fit `maxPx` in `font` (measured, so a node's text never runs into its neighbour). */
function fitText(text: string, maxPx: number, font: string): string {
  const key = `${font}|${maxPx}|${text}`;
  const hit = fitted.get(key);
  if (hit !== undefined) return hit;
  measurer ??= document.createElement('canvas').getContext('2d');
  let out = text;
  if (measurer) {
    measurer.font = font;
    const width = (s: string) => measurer!.measureText(s).width;
    if (width(text) > maxPx) {
      let lo = 0;
      let hi = text.length;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (width(text.slice(0, mid) + '…') <= maxPx) lo = mid;
        else hi = mid - 1;
      }
      out = text.slice(0, lo) + '…';
    }
  } else if (text.length > 20) {
    out = text.slice(0, 19) + '…';
  }
  if (fitted.size > 5_000) fitted.clear();
  fitted.set(key, out);
  return out;
}

/** States in the order a collapsed group takes its colour from: the first present wins. */
const GROUP_STATE_ORDER = ['error', 'running', 'waiting_retry', 'waiting', 'enqueued', 'pending', 'cancelled', 'succeeded', 'complete'];
const TALLY: Array<[string, string[], string]> = [
  ['✓', ['complete', 'succeeded'], 'complete'],
  ['✗', ['error', 'failed'], 'failed'],
  ['▶', ['running'], 'running'],
  ['…', ['pending', 'enqueued', 'waiting_retry', 'waiting'], 'waiting'],
  ['⊘', ['cancelled'], 'cancelled'],
];

interface DagGroup {
  id: string;
  label: string;
  members: DagNode[];
}

/**
 * Collapse fan-outs: siblings that share a group, or the same parents and
 * children, become one node ("work ×1000: 998 ✓ 2 ✗") unless `expanded`
 * names them. Edges to and from members go to the group, once.
 */
function collapseFanouts(nodes: DagNode[], edges: DagEdge[], expanded: ReadonlySet<string>) {
  const parents = new Map<string, string[]>();
  const children = new Map<string, string[]>();
  for (const e of edges) {
    parents.set(e.to, [...(parents.get(e.to) ?? []), e.from]);
    children.set(e.from, [...(children.get(e.from) ?? []), e.to]);
  }
  const byKey = new Map<string, DagNode[]>();
  for (const n of nodes) {
    const key = n.group ?? `${(parents.get(n.id) ?? []).sort().join(',')}|${(children.get(n.id) ?? []).sort().join(',')}`;
    byKey.set(key, [...(byKey.get(key) ?? []), n]);
  }
  const groups: DagGroup[] = [];
  const owner = new Map<string, string>();
  for (const [key, members] of byKey) {
    if (members.length < FANOUT_MIN) continue;
    const id = `group:${key}`;
    const label = members[0]!.group ?? commonName(members.map((m) => m.label));
    groups.push({ id, label, members });
    if (expanded.has(id)) continue;
    for (const m of members) owner.set(m.id, id);
  }
  const outNodes: DagNode[] = [];
  const emitted = new Set<string>();
  for (const n of nodes) {
    const g = owner.get(n.id);
    if (!g) {
      outNodes.push(n);
      continue;
    }
    if (emitted.has(g)) continue;
    emitted.add(g);
    const group = groups.find((x) => x.id === g)!;
    const states = group.members.map((m) => (m.ghost ? 'ghost' : (m.state ?? 'template')));
    const tally = TALLY.map(([mark, of]) => [mark, states.filter((s) => of.includes(s)).length] as const).filter(([, k]) => k > 0);
    outNodes.push({
      id: g,
      label: `${group.label} ×${group.members.length}`,
      sub: tally.length ? tally.map(([mark, k]) => `${k} ${mark}`).join(' ') : (group.members[0]!.sub ?? ''),
      state: GROUP_STATE_ORDER.find((s) => states.includes(s)) ?? states[0],
    });
  }
  const seen = new Set<string>();
  const outEdges: DagEdge[] = [];
  for (const e of edges) {
    const from = owner.get(e.from) ?? e.from;
    const to = owner.get(e.to) ?? e.to;
    const k = `${from}>${to}`;
    if (from === to || seen.has(k)) continue;
    seen.add(k);
    outEdges.push({ from, to });
  }
  return { nodes: outNodes, edges: outEdges, groups, owner };
}

/** What a group of names has in common ("work_001", "work_002" → "work"), else the first name and an ellipsis. */
function commonName(names: string[]): string {
  let prefix = names[0] ?? '';
  for (const n of names) while (!n.startsWith(prefix)) prefix = prefix.slice(0, -1);
  prefix = prefix.replace(/[_\-.\d]+$/, '');
  return prefix || `${names[0]}…`;
}

/** Lay out with dagre (top to bottom). */
function layoutDag(nodes: DagNode[], edges: DagEdge[]) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 36, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  for (const e of edges) if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const pos = new Map(nodes.map((n) => [n.id, g.node(n.id) as { x: number; y: number }]));
  const paths = g.edges().map((e) => ({ from: e.v, to: e.w, points: (g.edge(e) as { points: Array<{ x: number; y: number }> }).points }));
  const gr = g.graph() as { width?: number; height?: number };
  return { pos, paths, width: Math.max(gr.width ?? 0, NODE_W + 16), height: Math.max(gr.height ?? 0, NODE_H + 16) };
}

interface View {
  x: number;
  y: number;
  scale: number;
}

/** The view that shows the whole graph in a `w`×`h` box (never above 100 %), or its top at `minScale` when that is too small. */
function fitView(lw: number, lh: number, w: number, h: number, minScale: number): View {
  const scale = Math.max(minScale, Math.min(1, w / lw, h / lh));
  const vw = w / scale;
  const vh = h / scale;
  return { scale, x: (lw - vw) / 2, y: vh >= lh ? (lh - vh) / 2 : 0 };
}

/**
 * A DAG as SVG in a box as wide as its container: nodes coloured by state
 * with their text cut to fit (the full name on hover), edges with arrows,
 * fan-outs collapsed into one expandable node, and zoom (buttons, or
 * Ctrl + wheel), pan (drag) and fit. Nodes are buttons (keyboard and screen
 * reader reachable) when `onSelect` is given.
 */
export function Dag(props: { nodes: DagNode[]; edges: DagEdge[]; label: string; selected?: string; onSelect?: (id: string) => void }) {
  const { onSelect } = props;
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const collapsed = useMemo(() => collapseFanouts(props.nodes, props.edges, expanded), [props.nodes, props.edges, expanded]);
  const shape = collapsed.nodes.map((n) => n.id).join(',') + '|' + collapsed.edges.map((e) => `${e.from}>${e.to}`).join(',');
  const layout = useMemo(() => layoutDag(collapsed.nodes, collapsed.edges), [shape]);

  const wrap = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const resize = new ResizeObserver(() => setWidth(el.clientWidth));
    resize.observe(el);
    setWidth(el.clientWidth);
    return () => resize.disconnect();
  }, []);
  const w = Math.max(200, width);
  const h = Math.round(Math.min(MAX_H, Math.max(MIN_H, layout.height * Math.min(1, w / layout.width))));

  // The view fits the graph (at a readable scale: a big graph shows its top, its roots) until the
  // person zooms or pans; a new shape (steps created) fits it again. "Fit" shows all of it, however small.
  const [view, setView] = useState<View | null>(null);
  useEffect(() => setView(null), [shape]);
  const fit = () => setView(fitView(layout.width, layout.height, w, h, 0.02));
  const v = view ?? fitView(layout.width, layout.height, w, h, MIN_FIT_SCALE);
  const zoom = (factor: number, cx = w / 2, cy = h / 2) => {
    const scale = Math.min(4, Math.max(0.05, v.scale * factor));
    setView({ scale, x: v.x + cx / v.scale - cx / scale, y: v.y + cy / v.scale - cy / scale });
  };

  // Ctrl/⌘ + wheel zooms around the pointer (a plain wheel scrolls the page); needs a non-passive listener.
  const viewRef = useRef(v);
  viewRef.current = v;
  const zoomRef = useRef(zoom);
  zoomRef.current = zoom;
  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const onWheel = (e: WheelEvent) => {
      if (!e.ctrlKey && !e.metaKey) return;
      e.preventDefault();
      const r = el.getBoundingClientRect();
      zoomRef.current(e.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, e.clientX - r.left, e.clientY - r.top);
    };
    el.addEventListener('wheel', onWheel, { passive: false });
    return () => el.removeEventListener('wheel', onWheel);
  }, []);

  // Drag to pan; a press that does not move stays a click on the node under it.
  const drag = useRef<{ x: number; y: number; view: View; moved: boolean } | null>(null);
  const suppressClick = useRef(false);
  const onPointerDown = (e: PointerEvent) => {
    suppressClick.current = false;
    if (e.button !== 0) return;
    drag.current = { x: e.clientX, y: e.clientY, view: viewRef.current, moved: false };
  };
  const onPointerMove = (e: PointerEvent) => {
    const d = drag.current;
    if (!d) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    if (!d.moved && Math.hypot(dx, dy) < 4) return;
    if (!d.moved) (e.currentTarget as Element).setPointerCapture(e.pointerId);
    d.moved = true;
    setView({ scale: d.view.scale, x: d.view.x - dx / d.view.scale, y: d.view.y - dy / d.view.scale });
  };
  const onPointerUp = () => {
    // A drag ends without selecting the node it started on (the click comes after this).
    const moved = drag.current?.moved;
    drag.current = null;
    if (moved) suppressClick.current = true;
  };

  const groupOf = collapsed.owner.get(props.selected ?? '');
  const activate = (id: string) => {
    if (suppressClick.current) {
      suppressClick.current = false;
      return;
    }
    if (id.startsWith('group:')) setExpanded(new Set([...expanded, id]));
    else onSelect?.(id);
  };
  const expandedGroups = collapsed.groups.filter((g) => expanded.has(g.id));

  return html`<div class="dag-box">
    <div class="dag-tools" role="toolbar" aria-label=${`${props.label}: view`}>
      <button onClick=${() => zoom(ZOOM_STEP)} aria-label="Zoom in" title="Zoom in (Ctrl + wheel)">+</button>
      <button onClick=${() => zoom(1 / ZOOM_STEP)} aria-label="Zoom out" title="Zoom out (Ctrl + wheel)">−</button>
      <button onClick=${fit} title="Show the whole graph">Fit</button>
      <span class="muted" data-zoom=${v.scale.toFixed(3)}>${Math.round(v.scale * 100)} % · drag to pan</span>
      ${expandedGroups.map(
        (g) =>
          html`<button class="link" data-collapse=${g.label} onClick=${() => setExpanded(new Set([...expanded].filter((x) => x !== g.id)))}>
            Collapse ${g.label} ×${g.members.length}
          </button>`,
      )}
    </div>
    <div class="dag-wrap" ref=${wrap} style=${`height:${h}px`}>
      <svg
        class="dag"
        role="group"
        aria-label=${props.label}
        width=${w}
        height=${h}
        viewBox=${`${v.x} ${v.y} ${w / v.scale} ${h / v.scale}`}
        data-graph-width=${layout.width}
        data-graph-height=${layout.height}
        onPointerDown=${onPointerDown}
        onPointerMove=${onPointerMove}
        onPointerUp=${onPointerUp}
        onPointerCancel=${onPointerUp}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="dag-arrow" />
          </marker>
        </defs>
        ${layout.paths.map((p) => html`<path key=${`${p.from}>${p.to}`} class="dag-edge" marker-end="url(#arrow)" d=${'M' + p.points.map((q) => `${q.x},${q.y}`).join(' L')} />`)}
        ${collapsed.nodes.map((n) => {
          const at = layout.pos.get(n.id);
          if (!at) return null;
          const state = n.ghost ? 'ghost' : (n.state ?? 'template');
          const group = n.id.startsWith('group:');
          const clickable = group || onSelect !== undefined;
          const selected = props.selected === n.id || groupOf === n.id;
          const title = group ? `${n.label}: ${n.sub} (click to expand)` : `${n.label}${n.state ? ` (${n.state})` : ''}${n.ghost ? ' (not created)' : ''}`;
          return html`<g
            key=${n.id}
            class=${`dag-node ${stateClass(state)}${selected ? ' selected' : ''}${group ? ' dag-group' : ''}`}
            transform=${`translate(${at.x - NODE_W / 2},${at.y - NODE_H / 2})`}
            data-step=${group ? undefined : n.id}
            data-group=${group ? n.label.replace(/ ×\d+$/, '') : undefined}
            data-state=${state}
            role=${clickable ? 'button' : 'img'}
            tabindex=${clickable ? 0 : undefined}
            aria-label=${group ? `${title.replace(' (click to expand)', '')}; activate to expand` : title}
            aria-expanded=${group ? false : undefined}
            onClick=${clickable ? () => activate(n.id) : undefined}
            onKeyDown=${clickable ? (e: KeyboardEvent) => (e.key === 'Enter' || e.key === ' ') && (e.preventDefault(), activate(n.id)) : undefined}
          >
            <title>${title}</title>
            <rect width=${NODE_W} height=${NODE_H} rx="6" />
            <text x=${PAD_X} y="19" class="dag-label">${fitText(n.label, NODE_W - 2 * PAD_X, LABEL_FONT)}</text>
            <text x=${PAD_X} y="36" class="dag-sub">${fitText(n.sub ?? '', NODE_W - 2 * PAD_X, SUB_FONT)}</text>
          </g>`;
        })}
      </svg>
    </div>
  </div>`;
}
