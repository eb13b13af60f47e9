// `spec.environment.config` for paper-search: defaults and validation. Errors name the offending field
// as `spec.environment.config.<key>` and say what was expected.
import { type ConfigRules, CONFIG_FIELD, parseEnvConfig } from "../config-rules.ts";
import { checkHeldOutFractions } from "../held-out.ts";
import { AUTHOR_NAMES } from "./words.ts";

export interface PaperSearchConfig {
  /** Papers in the corpus (ids p0 … p<papers−1>). */
  papers: number;
  /** Distinct authors (one per paper). */
  authors: number;
  /** Most papers one author writes; an author search then lists all of them (needs topK ≥ it). */
  maxPapersPerAuthor: number;
  /** Publication years, from 2015 on. */
  years: number;
  /** Most references a paper makes (at least one unless it is from the first year). */
  maxRefs: number;
  /** Results a search shows. */
  topK: number;
  /** Hard bound on context words (goal + evidence + note). */
  maxContextWords: number;
  /** Share of in-domain tasks held out for the test split. */
  testFraction: number;
  /** The next share of in-domain tasks, held out for the validation split (taken from what was train). */
  validationFraction: number;
  /** Tasks are kept only if the optimal demonstrator submits within this many steps. */
  stepBudget: number;
  /**
   * 1: every task has a corpus of its own (same authors, years and ids; papers, titles and citations drawn
   * anew from a seed in the task id), and test and OOD corpora are never training corpora.
   */
  freshCorpus: number;
}

export const PAPER_SEARCH_DEFAULTS: Readonly<PaperSearchConfig> = {
  papers: 60,
  authors: 24,
  maxPapersPerAuthor: 3,
  years: 10,
  maxRefs: 3,
  topK: 3,
  maxContextWords: 96,
  testFraction: 0.2,
  validationFraction: 0.1,
  stepBudget: 5,
  freshCorpus: 0,
};

const RULES: ConfigRules<PaperSearchConfig> = {
  papers: { kind: "int", min: 12, max: 1000 },
  authors: { kind: "int", min: 4, max: AUTHOR_NAMES.length },
  maxPapersPerAuthor: { kind: "int", min: 2, max: 10 },
  years: { kind: "int", min: 3, max: 30 },
  maxRefs: { kind: "int", min: 1, max: 6 },
  topK: { kind: "int", min: 1, max: 10 },
  maxContextWords: { kind: "int", min: 64, max: 100000 },
  testFraction: { kind: "fraction" },
  validationFraction: { kind: "fraction" },
  stepBudget: { kind: "int", min: 3, max: 100 },
  freshCorpus: { kind: "int", min: 0, max: 1 },
};

export function parsePaperSearchConfig(raw: Record<string, unknown> | undefined): PaperSearchConfig {
  const out = parseEnvConfig(raw, PAPER_SEARCH_DEFAULTS, RULES);
  checkHeldOutFractions(out);
  if (out.authors * out.maxPapersPerAuthor < out.papers) {
    throw new Error(
      `${CONFIG_FIELD}.authors: expected at least ${Math.ceil(out.papers / out.maxPapersPerAuthor)} authors for ${out.papers} papers at ${out.maxPapersPerAuthor} per author, got ${out.authors}`,
    );
  }
  if (out.topK < out.maxPapersPerAuthor) {
    throw new Error(
      `${CONFIG_FIELD}.topK: expected at least maxPapersPerAuthor (${out.maxPapersPerAuthor}) so an author search lists all their papers, got ${out.topK}`,
    );
  }
  return out;
}
