// How the in-process environments carve their held-out splits, in one place so that every family follows
// the same rules. Two ways, by mode:
//   - one shared task pool (the default modes): a task's seeded hash u ∈ [0, 1) puts it in test below
//     testFraction, in validation below testFraction + validationFraction, in train above. Test keeps
//     exactly the tasks it had before validation existed; validation is carved out of what was train.
//   - a world of its own per task (multihop-qa freshFacts, paper-search freshCorpus): the task's
//     world seed decides. train, test and ood keep their residues mod 3 below 3·2²⁸ (as before, so their
//     tasks are unchanged); validation seeds lie above all of them, in [3·2²⁸, 4·2²⁸).
import type { Rng } from "../core/rng.ts";
import { CONFIG_FIELD } from "./config-rules.ts";
import type { Split } from "./environment.ts";

export type InDomainSplit = "train" | "validation" | "test";

/** The in-domain split of a task whose seeded hash is `u` (in [0, 1), or in the same units as the fractions). */
export function inDomainSplit(u: number, testFraction: number, validationFraction: number): InDomainSplit {
  if (u < testFraction) return "test";
  return u < testFraction + validationFraction ? "validation" : "train";
}

/** testFraction + validationFraction must leave a training share. */
export function checkHeldOutFractions(cfg: { testFraction: number; validationFraction: number }): void {
  if (cfg.testFraction + cfg.validationFraction >= 1) {
    throw new Error(
      `${CONFIG_FIELD}.validationFraction: expected testFraction + validationFraction below 1 (something left to train on), got ${cfg.testFraction} + ${cfg.validationFraction}`,
    );
  }
}

/** Draws per split below 3·2²⁸: train, test and ood by residue. */
const STREAM = 1 << 28;
const RESIDUE: Record<Exclude<Split, "validation">, number> = { train: 0, test: 1, ood: 2 };
/** The first validation world seed: above every train, test and ood one. */
export const VALIDATION_SEED_BASE = 3 * STREAM;

/** A world seed of `split` (one draw of `rng` whatever the split). */
export function drawWorldSeed(rng: Rng, split: Split): number {
  if (split === "validation") return VALIDATION_SEED_BASE + rng.int(STREAM);
  return 3 * rng.int(STREAM) + RESIDUE[split];
}

/** The split a world seed belongs to (the inverse of drawWorldSeed). */
export function splitOfWorldSeed(seed: number): Split {
  if (seed >= VALIDATION_SEED_BASE) return "validation";
  return (["train", "test", "ood"] as const)[seed % 3];
}

/** How many distinct world seeds one split has: 2²⁸ each. */
export const WORLD_SEEDS_PER_SPLIT = STREAM;
