// What every result file says about the run that wrote it: when, on which Node, on how many cores. The
// numbers of two files are comparable only when these match (and ratios only within one file).
import { cpus } from "node:os";

export function runHeader(): { date: string; node: string; cpus: number } {
  return { date: new Date().toISOString(), node: process.version, cpus: cpus().length };
}
