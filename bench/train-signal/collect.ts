// Assembles bench/train-signal.ts runs (their /tmp/runs/<tag>.json) into a results file under bench/results, and,
// with --choose-at, the choice per row over a learning-rate × clip grid read on validation at that env-step
// budget (probe-results.ts), so that the file works as a tuned part for `bench:algos --choices-from`.
//   node --import tsx bench/train-signal/collect.ts --out bench/results/lr-probe-textworld.json --description "…" \
//     [--runs-dir /tmp/runs] [--choose-at 6000 --learning-rates 3e-4,1e-4 [--clip-factors 1] [--with other.json …]] TAG…
// --with adds the runs of committed results files (another grid point's) to the choice, not to this file's runs.
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { positiveNumbers } from "../algos.ts";
import { ROWS } from "../algos/rows.ts";
import { type ProbeFile, type ProbeRun, probeChoices } from "./probe-results.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: "string" },
    description: { type: "string" },
    "runs-dir": { type: "string", default: "/tmp/runs" },
    "choose-at": { type: "string" },
    "learning-rates": { type: "string" },
    "clip-factors": { type: "string", default: "1" },
    with: { type: "string", multiple: true, default: [] },
  },
});
if (!values.out || !values.description || positionals.length === 0) {
  throw new Error("collect: --out FILE, --description TEXT and at least one run tag are required");
}
const runs: Record<string, ProbeRun> = {};
for (const tag of positionals) {
  const { tag: _, ...run } = JSON.parse(readFileSync(join(values["runs-dir"], `${tag}.json`), "utf8")) as ProbeRun & { tag: string };
  runs[tag] = run;
}
const file: ProbeFile = { benchmark: "train-signal", issue: 13, date: new Date().toISOString().slice(0, 10), description: values.description, runs };

if (values["choose-at"]) {
  if (!values["learning-rates"]) throw new Error("collect: --choose-at needs --learning-rates");
  const at = Number(values["choose-at"]);
  if (!Number.isInteger(at) || at <= 0) throw new Error(`collect: --choose-at takes one env-step budget (a positive integer), got "${values["choose-at"]}"`);
  const families = [...new Set(Object.values(runs).map((r) => r.family))];
  if (families.length !== 1) throw new Error(`collect: --choose-at reads one family's runs, these have ${families.join(", ")}`);
  const others = values.with.map((path) => JSON.parse(readFileSync(path, "utf8")) as ProbeFile);
  const seeds = [...new Set(Object.values(runs).map((r) => r.seed))].sort((a, b) => a - b);
  const grid = {
    learningRates: positiveNumbers("learning-rates", values["learning-rates"])!,
    clipFactors: positiveNumbers("clip-factors", values["clip-factors"])!,
    seeds,
  };
  const rowIds = new Set(Object.values(runs).map((r) => r.row));
  const rows = ROWS.filter((r) => rowIds.has(r.id));
  file.settings = { tune: grid, envStepBudget: { [families[0]]: at } };
  file.choices = probeChoices([...others, file], [...values.with.map((p) => basename(p)), basename(values.out)], families[0], rows, grid, at);
}
writeFileSync(values.out, `${JSON.stringify(file, null, 1)}\n`);
process.stdout.write(
  `collect: ${positionals.length} run(s) → ${values.out}${file.choices ? `; chosen: ${file.choices.map((c) => `${c.row} ${c.chosen.id}`).join(", ")}` : ""}\n`,
);
