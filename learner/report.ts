// The learning curve of a run as CSV and as a self-contained SVG picture (no plotting dependency), and the
// line charts behind it (the benchmarks draw several runs on one).
import { writeFileSync } from "node:fs";

/** One row of the learning curve; null marks a value not measured at that point (JSON-safe, unlike NaN). */
export interface CurvePoint {
  update: number;
  envSteps: number;
  /** Success rate of the sampled training batch. */
  trainSuccess: number | null;
  /** Greedy success on the in-domain test split (null where not evaluated). */
  testSuccess: number | null;
  meanReturn: number | null;
  /** Mean steps per episode of the batch. */
  meanEpisodeLength: number | null;
  policyLoss: number | null;
  valueLoss: number | null;
  entropy: number | null;
  clipFraction: number | null;
  /** Mean approximate KL(old ‖ new) over the update's minibatches (k1 estimator, as CleanRL logs it). */
  approxKl: number | null;
  /** The critic's explained variance on this batch's value targets, before the update (null: no critic). */
  explainedVariance: number | null;
  /** Mean gradient norm before clipping. */
  gradNorm: number | null;
  /** The optimiser's learning rate in this update. */
  learningRate: number | null;
  /** Mean policy lag of the batch: versions between the policy that sampled an episode and the one it trains (0 synchronous). */
  policyLag: number | null;
  /** Samples dropped as too stale so far (distributed runs; null for the embedded runner, which has none). */
  staleDrops: number | null;
  /** Step samples trained per second of the update itself. */
  samplesPerSecond: number | null;
  seconds: number;
}

const COLUMNS: (keyof CurvePoint)[] = [
  "update",
  "envSteps",
  "trainSuccess",
  "testSuccess",
  "meanReturn",
  "meanEpisodeLength",
  "policyLoss",
  "valueLoss",
  "entropy",
  "clipFraction",
  "approxKl",
  "explainedVariance",
  "gradNorm",
  "learningRate",
  "policyLag",
  "staleDrops",
  "samplesPerSecond",
  "seconds",
];

export function curveCsv(curve: CurvePoint[]): string {
  const rows = curve.map((p) =>
    COLUMNS.map((c) => {
      const v = p[c];
      return v === null ? "" : String(Number(v.toFixed(6)));
    }).join(","),
  );
  return `${COLUMNS.join(",")}\n${rows.join("\n")}\n`;
}

export function writeCurveCsv(path: string, curve: CurvePoint[]): void {
  writeFileSync(path, curveCsv(curve));
}

export interface ChartSeries {
  name: string;
  color: string;
  points: [number, number][];
}

export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
}

const CHART = { width: 640, height: 360, left: 52, right: 16, top: 36, bottom: 44, legendRow: 18 };

/** Legend entries laid out left to right, wrapping onto new rows; returns the markup and the rows used. */
function legendSvg(series: ChartSeries[], left: number, top: number, width: number): { svg: string; rows: number } {
  let x = left;
  let row = 0;
  const items = series.map((s) => {
    const w = 28 + 7 * s.name.length; // swatch, gap, ~7 px per character at font-size 12
    if (x > left && x + w > left + width) {
      x = left;
      row++;
    }
    const y = top + row * CHART.legendRow;
    const item = `<rect x="${x}" y="${y}" width="12" height="12" fill="${s.color}"/><text x="${x + 18}" y="${y + 10}">${escapeXml(s.name)}</text>`;
    x += w;
    return item;
  });
  return { svg: items.join(""), rows: row + 1 };
}

/** One line chart of rates (0..1) against a count (x from 0 to the largest x of any series); its height is returned. */
function chartBody(chart: Chart, top: number): { svg: string; height: number } {
  const W = CHART.width;
  const legend = legendSvg(chart.series, CHART.left + 10, top + 28, W - CHART.left - CHART.right - 10);
  const m = { l: CHART.left, r: CHART.right, t: top + 30 + legend.rows * CHART.legendRow, b: CHART.bottom };
  const H = top + CHART.height + (legend.rows - 1) * CHART.legendRow;
  const maxX = Math.max(1, ...chart.series.flatMap((s) => s.points.map(([px]) => px)));
  const x = (v: number) => m.l + (v / maxX) * (W - m.l - m.r);
  const y = (v: number) => H - m.b - v * (H - m.t - m.b);
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (v) =>
        `<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/><text x="${m.l - 8}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`,
    )
    .join("");
  const xTicks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => `<text x="${x(f * maxX)}" y="${H - m.b + 18}" text-anchor="middle">${Math.round(f * maxX)}</text>`)
    .join("");
  const lines = chart.series
    .map((s) => {
      const path = s.points.map(([px, py], i) => `${i ? "L" : "M"}${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(" ");
      const dots = s.points.map(([px, py]) => `<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="2.5" fill="${s.color}"/>`).join("");
      return `<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>${dots}`;
    })
    .join("");
  const midY = (m.t + H - m.b) / 2;
  const svg = `<text x="${W / 2}" y="${top + 16}" text-anchor="middle" font-size="14">${escapeXml(chart.title)}</text>
${grid}${xTicks}${legend.svg}
<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#111"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#111"/>
<text x="${W / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>
<text x="14" y="${midY}" text-anchor="middle" transform="rotate(-90 14 ${midY})">${escapeXml(chart.yLabel)}</text>
${lines}
`;
  return { svg, height: H - top };
}

/** Line charts stacked vertically in one self-contained SVG picture (no plotting dependency). */
export function chartsSvg(charts: Chart[]): string {
  let top = 0;
  const bodies = charts.map((c) => {
    const body = chartBody(c, top);
    top += body.height;
    return body.svg;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${CHART.width}" height="${top}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${bodies.join("")}</svg>
`;
}

/** Success rates (0..1) against environment steps. */
export function curveSvg(curve: CurvePoint[], title: string): string {
  return chartsSvg([
    {
      title,
      xLabel: "environment steps",
      yLabel: "success rate",
      series: [
        {
          name: "train batch success",
          color: "#9aa5b1",
          points: curve.flatMap((p): [number, number][] => (p.trainSuccess === null ? [] : [[p.envSteps, p.trainSuccess]])),
        },
        {
          name: "greedy test success",
          color: "#1f6feb",
          points: curve.flatMap((p): [number, number][] => (p.testSuccess === null ? [] : [[p.envSteps, p.testSuccess]])),
        },
      ],
    },
  ]);
}

export function writeCurveSvg(path: string, curve: CurvePoint[], title: string): void {
  writeFileSync(path, curveSvg(curve, title));
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
