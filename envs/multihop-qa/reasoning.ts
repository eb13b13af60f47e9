// The verbose demonstrator's written-out reasoning (config.verboseReasoning): before each step's own
// words, the question restated as a chain of relations, and the fact the previous step read. Both can be
// copied from the context — the question is always in it, the previous step's passage is the one before
// the newest — so a small policy can learn to write them; they make a step 30–40 tokens long, so that
// token-level credit genuinely decays over an episode (issue #13).
import type { Question } from "./questions.ts";
import { REL_WORDS } from "./questions.ts";

/** The openings of a restatement: of a chain, and of a comparison (before its two names). */
const ASKS_FOR = ["the", "question", "asks", "for"];
const ASKS_WHO = ["the", "question", "asks", "who", "is", "first", ","];

/**
 * The question as a chain, outermost relation first: "the question asks for the region of the birthplace
 * of … of the director of Velmora ." A comparison: "the question asks who is first , A or B ."
 */
export function restate(q: Question): string[] {
  const v = q.variant;
  if (v.kind === "compare") return [...ASKS_WHO, q.chain[0], "or", q.chain[1], "."];
  const relations = [...v.path].reverse().flatMap((rel) => ["the", ...REL_WORDS[rel], "of"]);
  return [...ASKS_FOR, ...relations, q.chain[0], "."];
}

/** Words a restatement adds besides relation words, entity names and the grammar's punctuation. */
export function restatementWords(): string[] {
  // In this order: the vocabulary's order is the token ids' (the long setting's results depend on it).
  return [...new Set([...ASKS_FOR, "of", ".", ...ASKS_WHO, "or"])];
}

/**
 * The fact a demonstrator step opens with — "the director of Velmora is Orsk ." — or nothing for a step
 * that has read nothing yet ("i need the director of Velmora . search [ Velmora ]"). Every step the
 * demonstrator writes either opens with its fact, ended by the first ".", or with "i need".
 */
export function statedFact(step: readonly string[]): string[] {
  if (step[0] !== "the") return [];
  const end = step.indexOf(".");
  return end < 0 ? [] : step.slice(0, end + 1);
}
