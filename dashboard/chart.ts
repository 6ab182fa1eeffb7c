import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

const PALETTE = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d'];

export interface Series {
  label: string;
  values: Array<number | null>;
}

/**
 * A uPlot line (or bar) chart in a box of fixed height, so data arriving
 * later never moves the page. `x` are Unix seconds, or indexes with `bars`.
 */
export function Chart(props: {
  title: string;
  x: number[];
  series: Series[];
  unit?: string;
  height?: number;
  /** Bars drawn over each other in series order: put the largest series first. */
  bars?: boolean;
  /** Stepped lines over an index axis (histograms). */
  steps?: boolean;
  xLabels?: string[];
}) {
  const indexed = props.bars || props.steps;
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const height = props.height ?? 200;
  const shape = `${props.bars ? 'b' : props.steps ? 's' : 'l'}|${props.series.map((s) => s.label).join('|')}|${props.xLabels?.join('|') ?? ''}`;
  const data = [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(240, el.clientWidth);
    const opts: uPlot.Options = {
      width,
      height,
      legend: { show: true },
      cursor: { show: true },
      scales: { x: { time: !indexed } },
      axes: [
        indexed ? { values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (props.xLabels?.[t] ?? '') : '')), gap: 4 } : {},
        { values: (_u, ticks) => ticks.map((t) => `${+t.toPrecision(3)}${props.unit ? ` ${props.unit}` : ''}`), size: 70 },
      ],
      series: [
        {},
        ...props.series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          fill: props.bars ? `${PALETTE[i % PALETTE.length]}cc` : props.steps ? `${PALETTE[i % PALETTE.length]}22` : undefined,
          width: props.bars ? 0 : 2,
          paths: props.bars ? uPlot.paths.bars!({ size: [0.6, 60] }) : props.steps ? uPlot.paths.stepped!({ align: 1 }) : undefined,
          points: { show: false },
          spanGaps: false,
        })),
      ],
    };
    const u = new uPlot(opts, data, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(240, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape, height]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return html`<figure class="chart" aria-label=${props.title}>
    <figcaption>${props.title}</figcaption>
    <div ref=${box} class="chart-box" style=${`min-height:${height + 40}px`}></div>
  </figure>`;
}
