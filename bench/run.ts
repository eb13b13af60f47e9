// `npm run bench [-- NAME ...]`: runs every benchmark module in bench/ (each exports `main()` and writes
// bench/results/<name>.json), or only the ones named. Modules that export `runByDefault = false` (the
// algorithm comparison: about an hour, `npm run bench:algos`) run only when named.
import { readdirSync } from "node:fs";
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts")
  .map((f) => basename(f, ".ts"))
  .sort();
// Names come first; from the first flag on, the arguments are the named benchmarks' own flags, values
// included (`npm run bench -- algos --families multihop-qa --tune`: "multihop-qa" is no benchmark name).
const args = process.argv.slice(2);
const firstFlag = args.findIndex((a) => a.startsWith("-"));
const wanted = firstFlag < 0 ? args : args.slice(0, firstFlag);
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown benchmark(s) ${unknown.join(", ")}; available: ${available.join(", ")}\n`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted.length > 0 ? wanted : available) {
  const mod = (await import(`./${name}.ts`)) as { main?: () => Promise<void>; runByDefault?: boolean };
  if (typeof mod.main !== "function") continue;
  if (wanted.length === 0 && mod.runByDefault === false) {
    process.stderr.write(`bench ${name}: skipped (runs only when named: npm run bench -- ${name})\n`);
    continue;
  }
  const t0 = Date.now();
  process.stderr.write(`bench ${name}: running\n`);
  try {
    await mod.main();
    process.stderr.write(`bench ${name}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  } catch (err) {
    failed++;
    process.stderr.write(`bench ${name}: failed: ${(err as Error).stack ?? err}\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
