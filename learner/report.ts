// The learning curve of a run as CSV and as a self-contained SVG picture (no plotting dependency).
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
  policyLoss: number | null;
  valueLoss: number | null;
  entropy: number | null;
  clipFraction: number | null;
  seconds: number;
}

const COLUMNS: (keyof CurvePoint)[] = [
  "update",
  "envSteps",
  "trainSuccess",
  "testSuccess",
  "meanReturn",
  "policyLoss",
  "valueLoss",
  "entropy",
  "clipFraction",
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

interface Series {
  name: string;
  color: string;
  points: [number, number][];
}

/** Success rates (0..1) against environment steps. */
export function curveSvg(curve: CurvePoint[], title: string): string {
  const W = 640;
  const H = 360;
  const m = { l: 52, r: 16, t: 36, b: 44 };
  const series: Series[] = [
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
  ];
  const maxX = Math.max(1, ...curve.map((p) => p.envSteps));
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
  const lines = series
    .map((s) => {
      const path = s.points.map(([px, py], i) => `${i ? "L" : "M"}${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(" ");
      const dots = s.points.map(([px, py]) => `<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="2.5" fill="${s.color}"/>`).join("");
      return `<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>${dots}`;
    })
    .join("");
  const legend = series
    .map(
      (s, i) =>
        `<rect x="${m.l + 10 + i * 190}" y="${m.t - 24}" width="12" height="12" fill="${s.color}"/><text x="${m.l + 28 + i * 190}" y="${m.t - 14}">${s.name}</text>`,
    )
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="16" text-anchor="middle" font-size="14">${escapeXml(title)}</text>
${grid}${xTicks}${legend}
<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#111"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#111"/>
<text x="${W / 2}" y="${H - 8}" text-anchor="middle">environment steps</text>
<text x="14" y="${H / 2}" text-anchor="middle" transform="rotate(-90 14 ${H / 2})">success rate</text>
${lines}
</svg>
`;
}

export function writeCurveSvg(path: string, curve: CurvePoint[], title: string): void {
  writeFileSync(path, curveSvg(curve, title));
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
