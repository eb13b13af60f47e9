// Progress reporting: a redrawn bar on a terminal, one plain line per update otherwise (CI logs, pods).
import { writeFileSync } from "node:fs";
import type { CurvePoint } from "../learner/report.ts";

export function progressReporter(stream: NodeJS.WriteStream = process.stderr): (p: CurvePoint, total: number) => void {
  // Rate from the updates seen by this reporter only (not warm-up, not updates before a resume).
  let first: { update: number; at: number } | undefined;
  return (p, total) => {
    first ??= { update: p.update - 1, at: Date.now() - p.seconds * 1000 };
    const done = p.update - first.update;
    const eta = done > 0 ? ((Date.now() - first.at) / 1000 / done) * (total - p.update) : 0;
    const test = p.testSuccess === null ? "" : ` test ${p.testSuccess.toFixed(2)}`;
    const f = (v: number | null) => (v === null ? "-" : v.toFixed(2));
    const info = `update ${p.update}/${total} train ${f(p.trainSuccess)}${test} return ${f(p.meanReturn)} clip ${f(p.clipFraction)} ${p.seconds.toFixed(1)}s/update eta ${eta.toFixed(0)}s`;
    if (stream.isTTY) {
      const width = 24;
      const filled = Math.round((p.update / total) * width);
      stream.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${info}\x1b[K`);
      if (p.update === total) stream.write("\n");
    } else {
      stream.write(`${info}\n`);
    }
  };
}

/** A finished run's summary: in full to `--summary FILE`, without the curve on stdout. */
export function printSummary(summary: { curve: unknown }, file: string | boolean | undefined): void {
  const { curve: _curve, ...brief } = summary;
  if (typeof file === "string") writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(brief, null, 2)}\n`);
}
