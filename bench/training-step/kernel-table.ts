// tf.profile's kernels as the profiling scripts print them: time and calls per kernel name, and optionally the
// costliest (name, input shapes) pairs.
import type { tf } from "../../policy/backend.ts";

type Profile = Awaited<ReturnType<typeof tf.profile>>;

interface Tally {
  ms: number;
  n: number;
}

function tally(kernels: Profile["kernels"], key: (k: Profile["kernels"][number]) => string): Map<string, Tally> {
  const by = new Map<string, Tally>();
  for (const k of kernels) {
    const e = by.get(key(k)) ?? { ms: 0, n: 0 };
    e.ms += k.kernelTimeMs as number;
    e.n++;
    by.set(key(k), e);
  }
  return by;
}

/** Prints kernel time and calls by name, largest first; with `shapes`, that many of the costliest name-and-shapes pairs after it. */
export function printKernelTable(prof: Profile, shapes?: number): void {
  const byName = tally(prof.kernels, (k) => k.name);
  const total = [...byName.values()].reduce((s, e) => s + e.ms, 0);
  console.log(`profiled kernels: ${prof.kernels.length}, kernel ms ${total.toFixed(0)}`);
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms))
    console.log(`  ${name.padEnd(24)} ${e.ms.toFixed(1).padStart(8)} ms  ${String(e.n).padStart(6)} calls  ${((100 * e.ms) / total).toFixed(1)} %`);
  if (!shapes) return;
  const byShape = tally(prof.kernels, (k) => `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(" ")}`);
  for (const [name, e] of [...byShape].sort((a, b) => b[1].ms - a[1].ms).slice(0, shapes))
    console.log(`  ${e.ms.toFixed(1).padStart(8)} ms ${String(e.n).padStart(4)}× ${name}`);
}
