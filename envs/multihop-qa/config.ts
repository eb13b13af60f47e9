// `spec.environment.config` for multihop-qa: defaults and validation. Errors name the offending field
// as `spec.environment.config.<key>` and say what was expected.

import { type ConfigRules, CONFIG_FIELD, parseEnvConfig } from "../config-rules.ts";
import { checkHeldOutFractions } from "../held-out.ts";
export interface MultihopQaConfig {
  /** Knowledge-base size per entity type. */
  people: number;
  films: number;
  cities: number;
  companies: number;
  /** Passages a search returns. */
  topK: number;
  /** Passages of evidence kept in the context. */
  maxPassages: number;
  /** Hard bound on context words (question + evidence + note). */
  maxContextWords: number;
  /** Share of bridge anchors (films, companies) held out for the in-domain test split. */
  testFraction: number;
  /** The next share of bridge questions, held out for the validation split (taken from what was train). */
  validationFraction: number;
  /** 1: every task has a knowledge base of its own (same names, fresh facts); test facts are never training facts. */
  freshFacts: number;
  /**
   * 1: the in-domain family is `long-chain` (5-hop questions: five searches and the answer, 6 steps) instead
   * of `bridge` (2 hops, 3 steps); the held-out families stay as they are.
   */
  longChains: number;
  /**
   * 1: the demonstrator writes its reasoning out before each call — the question's chain restated and the
   * facts it read — so a step is 30–40 tokens instead of 10–20 (issue #13: token-level credit must decay).
   */
  verboseReasoning: number;
}

export const DEFAULT_CONFIG: Readonly<MultihopQaConfig> = {
  people: 24,
  films: 12,
  cities: 8,
  companies: 8,
  topK: 2,
  maxPassages: 2,
  maxContextWords: 96,
  testFraction: 0.25,
  validationFraction: 0.1,
  freshFacts: 0,
  longChains: 0,
  verboseReasoning: 0,
};

const RULES: ConfigRules<MultihopQaConfig> = {
  people: { kind: "int", min: 2, max: 500 },
  films: { kind: "int", min: 2, max: 500 },
  cities: { kind: "int", min: 2, max: 500 },
  companies: { kind: "int", min: 2, max: 500 },
  topK: { kind: "int", min: 1, max: 10 },
  maxPassages: { kind: "int", min: 1, max: 10 },
  maxContextWords: { kind: "int", min: 1, max: 4096 },
  testFraction: { kind: "fraction" },
  validationFraction: { kind: "fraction" },
  freshFacts: { kind: "int", min: 0, max: 1 },
  longChains: { kind: "int", min: 0, max: 1 },
  verboseReasoning: { kind: "int", min: 0, max: 1 },
};

/**
 * Defaults merged with `raw`. `minContextWords` is the smallest context bound that still fits the
 * longest question plus the longest note (the question is never dropped).
 */
export function parseConfig(raw: Record<string, unknown> | undefined, minContextWords: number): MultihopQaConfig {
  const out = parseEnvConfig(raw, DEFAULT_CONFIG, RULES);
  checkHeldOutFractions(out);
  if (out.maxContextWords < minContextWords) {
    throw new Error(
      `${CONFIG_FIELD}.maxContextWords: expected an integer of at least ${minContextWords} (the longest question plus a note), got ${out.maxContextWords}`,
    );
  }
  return out;
}
