// Reads curve.csv back (learner/report.ts writes it). Tolerant: a run writes it while the dashboard reads, and
// an old or damaged file must give the dashboard a message, not an exception.
import type { CurvePoint } from "../../learner/report.ts";

export interface ParsedCurve {
  points: CurvePoint[];
  problems: string[];
}

const REQUIRED = ["update", "envSteps"] as const;

export function parseCurveCsv(text: string): ParsedCurve {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const problems: string[] = [];
  if (lines.length === 0) return { points: [], problems: ["curve.csv is empty"] };
  const header = lines[0].split(",").map((h) => h.trim());
  const missing = REQUIRED.filter((c) => !header.includes(c));
  if (missing.length > 0) return { points: [], problems: [`curve.csv has no ${missing.join(", ")} column (header: ${lines[0].slice(0, 120)})`] };
  const points: CurvePoint[] = [];
  lines.slice(1).forEach((line, i) => {
    const cells = line.split(",");
    if (cells.length !== header.length) {
      problems.push(`curve.csv line ${i + 2} has ${cells.length} fields, expected ${header.length} (a truncated file?); skipped`);
      return;
    }
    const row: Record<string, number | null> = {};
    let bad = false;
    header.forEach((h, j) => {
      const cell = cells[j].trim();
      const v = cell === "" ? null : Number(cell);
      if (v !== null && !Number.isFinite(v)) bad = true;
      row[h] = v;
    });
    if (bad || row.update === null || row.envSteps === null) {
      problems.push(`curve.csv line ${i + 2} is not numeric; skipped`);
      return;
    }
    points.push(fillPoint(row));
  });
  return { points, problems };
}

/** A curve row with every CurvePoint field present (null where the file has no such column). */
export function fillPoint(row: Record<string, number | null | undefined>): CurvePoint {
  const get = (k: string) => (typeof row[k] === "number" ? (row[k] as number) : null);
  return {
    update: get("update") ?? 0,
    envSteps: get("envSteps") ?? 0,
    trainSuccess: get("trainSuccess"),
    testSuccess: get("testSuccess"),
    meanReturn: get("meanReturn"),
    meanEpisodeLength: get("meanEpisodeLength"),
    policyLoss: get("policyLoss"),
    valueLoss: get("valueLoss"),
    entropy: get("entropy"),
    clipFraction: get("clipFraction"),
    approxKl: get("approxKl"),
    explainedVariance: get("explainedVariance"),
    gradNorm: get("gradNorm"),
    learningRate: get("learningRate"),
    policyLag: get("policyLag"),
    staleDrops: get("staleDrops"),
    samplesPerSecond: get("samplesPerSecond"),
    seconds: get("seconds") ?? 0,
  };
}
