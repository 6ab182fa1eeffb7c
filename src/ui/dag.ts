import { html } from 'htm/preact';
import dagre from '@dagrejs/dagre';
import { stateClass } from './format.js';

export interface DagNode {
  id: string;
  label: string;
  sub?: string;
  state?: string;
  /** A template step with no step in the task (a branch not taken, not yet expanded). */
  ghost?: boolean;
}
export interface DagEdge {
  from: string;
  to: string;
}

const NODE_W = 176;
const NODE_H = 46;

/** Lay out with dagre (top to bottom). Separate from drawing so the layout can be memoised on the graph's shape. */
export function layoutDag(nodes: DagNode[], edges: DagEdge[]) {
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

/**
 * A DAG as SVG: each node a box coloured by state, edges with arrows. Nodes
 * are buttons (keyboard and screen reader reachable) when `onSelect` is given.
 */
export function Dag(props: {
  nodes: DagNode[];
  edges: DagEdge[];
  layout: ReturnType<typeof layoutDag>;
  label: string;
  selected?: string;
  onSelect?: (id: string) => void;
}) {
  const { nodes, layout, onSelect } = props;
  return html`<div class="dag-wrap">
    <svg class="dag" role="group" aria-label=${props.label} viewBox=${`0 0 ${layout.width} ${layout.height}`} width=${layout.width} height=${layout.height}>
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M0,0 L10,5 L0,10 z" class="dag-arrow" />
        </marker>
      </defs>
      ${layout.paths.map((p) => html`<path key=${`${p.from}>${p.to}`} class="dag-edge" marker-end="url(#arrow)" d=${'M' + p.points.map((q) => `${q.x},${q.y}`).join(' L')} />`)}
      ${nodes.map((n) => {
        const at = layout.pos.get(n.id);
        if (!at) return null;
        const state = n.ghost ? 'ghost' : (n.state ?? 'template');
        const activate = onSelect ? () => onSelect(n.id) : undefined;
        return html`<g
          key=${n.id}
          class=${`dag-node ${stateClass(state)}${props.selected === n.id ? ' selected' : ''}`}
          transform=${`translate(${at.x - NODE_W / 2},${at.y - NODE_H / 2})`}
          data-step=${n.id}
          data-state=${state}
          role=${onSelect ? 'button' : 'img'}
          tabindex=${onSelect ? 0 : undefined}
          aria-label=${`${n.label}${n.state ? `: ${n.state}` : ''}${n.ghost ? ': not created' : ''}`}
          onClick=${activate}
          onKeyDown=${activate ? (e: KeyboardEvent) => (e.key === 'Enter' || e.key === ' ') && (e.preventDefault(), activate()) : undefined}
        >
          <rect width=${NODE_W} height=${NODE_H} rx="6" />
          <text x="10" y="19" class="dag-label">${n.label.length > 22 ? n.label.slice(0, 21) + '…' : n.label}</text>
          <text x="10" y="36" class="dag-sub">${n.sub ?? ''}</text>
        </g>`;
      })}
    </svg>
  </div>`;
}
