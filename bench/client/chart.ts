// Charts of a sweep: aggregate output tok/s and TTFT against concurrency, one line per server,
// drawn with Vega-Lite and rendered to SVG headlessly (no browser or canvas needed).
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { RunSummary } from './summary.ts';

export interface ChartSeries {
  name: string;
  runs: RunSummary[];
}

interface Point {
  server: string;
  concurrency: number;
  tokPerS: number;
  ttftP50: number | null;
}

function points(series: ChartSeries[]): Point[] {
  return series.flatMap((s) =>
    s.runs.map((r) => ({ server: s.name, concurrency: r.concurrency, tokPerS: r.outputTokPerS, ttftP50: r.ttftMs.p50 })),
  );
}

export function sweepChartSpec(series: ChartSeries[], title: string): vegaLite.TopLevelSpec {
  const encoding = (field: 'tokPerS' | 'ttftP50', label: string) => ({
    x: {
      field: 'concurrency',
      type: 'quantitative',
      title: 'concurrency',
      scale: { type: 'log', base: 2 },
      axis: { values: [1, 2, 4, 8, 16, 32, 64] },
    },
    // TTFT spans orders of magnitude between servers: a log scale keeps every line readable.
    y: { field, type: 'quantitative', title: label, ...(field === 'ttftP50' ? { scale: { type: 'log' } } : {}) },
    color: { field: 'server', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2, labelLimit: 360 } },
  });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: points(series) },
    hconcat: [
      { width: 300, height: 220, mark: { type: 'line', point: true }, encoding: encoding('tokPerS', 'output tok/s (aggregate)') },
      {
        width: 300,
        height: 220,
        transform: [{ filter: 'datum.ttftP50 != null' }],
        mark: { type: 'line', point: true },
        encoding: encoding('ttftP50', 'TTFT p50 (ms, log scale)'),
      },
    ],
  };
  // Built as plain data; vega-lite validates it when compiling.
  return spec as unknown as vegaLite.TopLevelSpec;
}

export async function sweepChartSvg(series: ChartSeries[], title: string): Promise<string> {
  const compiled = vegaLite.compile(sweepChartSpec(series, title)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
