// Scripted agents for behaviour cloning. The optimal one reacts to what is in the context: it finds the
// furthest entity of the question's chain whose passage is visible and either searches the next one or
// answers, with a short templated reasoning prefix:
//   i need the director of Velmora . search [ Velmora ]
//   the director of Velmora is Orsk . search [ Orsk ]
//   the birthplace of Orsk is Kelbridge . answer [ Kelbridge ]
// The sub-optimal one follows a fixed plan with one plausible mistake drawn from the rng: answering too
// early with the bridge entity, answering a wrong value of the right type, following a distractor
// entity and answering from it, or repeating a search. Every plan ends with an answer within 5 steps on a
// question of up to 4 hops, within hops + 2 on a long chain.
//
// config.verboseReasoning: every step first restates the question as a chain and the fact the previous
// step read, then takes the same step as above (reasoning.ts), e.g. the third step of a long chain:
//   the question asks for the region of the birthplace of the founder of the employer of the director of
//   Velmora . the director of Velmora is Orsk . the employer of Orsk is Kelco . search [ Kelco ]
import type { Rng } from "../../core/rng.ts";
import type { Episode } from "../environment.ts";
import { MultihopEpisode } from "./episode.ts";
import type { KnowledgeBase } from "./knowledge-base.ts";
import { applyRel, earlier, followChain, type Question, REL_WORDS, type Rel, relRange } from "./questions.ts";
import { restate, restatementWords, statedFact } from "./reasoning.ts";

/** The most steps a demonstration of a question of up to 4 hops takes. */
export const MAX_DEMO_STEPS = 5;

const first = (rel: Rel, e: string) => ["i", "need", "the", ...REL_WORDS[rel], "of", e, ".", "search", "[", e, "]"];
const hop = (rel: Rel, e: string, next: string) => ["the", ...REL_WORDS[rel], "of", e, "is", next, ".", "search", "[", next, "]"];
const final = (rel: Rel, e: string, value: string) => ["the", ...REL_WORDS[rel], "of", e, "is", value, ".", "answer", "[", value, "]"];
const compareNext = (rel: Rel, a: string, ya: string, b: string) => [
  "the",
  ...REL_WORDS[rel],
  "of",
  a,
  "is",
  ya,
  ".",
  "i",
  "need",
  "the",
  ...REL_WORDS[rel],
  "of",
  b,
  ".",
  "search",
  "[",
  b,
  "]",
];
const compareFinal = (rel: Rel, b: string, yb: string, winner: string) => [
  "the",
  ...REL_WORDS[rel],
  "of",
  b,
  "is",
  yb,
  ".",
  "so",
  winner,
  "is",
  "first",
  ".",
  "answer",
  "[",
  winner,
  "]",
];

/** Every word a demonstration can contain besides entity names and years (`verbose`: its restatements too). */
export function demonstratorWords(verbose = false): string[] {
  const x = "\u0000";
  const words = new Set<string>(verbose ? restatementWords() : []);
  for (const rel of Object.keys(REL_WORDS) as Rel[]) {
    for (const a of [first(rel, x), hop(rel, x, x), final(rel, x, x), compareNext(rel, x, x, x), compareFinal(rel, x, x, x)])
      for (const w of a) if (w !== x) words.add(w);
  }
  return [...words];
}

/** The optimal next action given the passages currently in the context. */
export function optimalAction(kb: KnowledgeBase, q: Question, visible: ReadonlySet<number>): string[] {
  const v = q.variant;
  if (v.kind === "compare") {
    const [a, b] = q.chain;
    const [ya, yb] = q.years!;
    const seeA = visible.has(kb.docOf(a));
    const seeB = visible.has(kb.docOf(b));
    if (seeA && seeB) return compareFinal(v.rel, b, yb, q.answer);
    if (seeA) return compareNext(v.rel, a, ya, b);
    if (seeB) return compareNext(v.rel, b, yb, a);
    return first(v.rel, a);
  }
  const j = furthestInView(kb, q.chain, visible);
  if (j < 0) return first(v.path[0], q.chain[0]);
  if (j < q.chain.length - 1) return hop(v.path[j], q.chain[j], q.chain[j + 1]);
  return final(v.path[j], q.chain[j], q.answer);
}

/** The index of the chain's furthest entity whose passage is in view, −1 for none. */
function furthestInView(kb: KnowledgeBase, chain: readonly string[], visible: ReadonlySet<number>): number {
  let j = -1;
  chain.forEach((e, i) => {
    if (visible.has(kb.docOf(e))) j = i;
  });
  return j;
}

/** The optimal search steps along a chain (chain[i + 1] = path[i](chain[i])). */
function searches(path: readonly Rel[], chain: string[]): string[][] {
  return chain.map((e, i) => (i === 0 ? first(path[0], e) : hop(path[i - 1], chain[i - 1], e)));
}

type Mistake = "early" | "wrong" | "distractor" | "repeat";

function chainPlan(kb: KnowledgeBase, q: Question, rng: Rng): string[][] {
  if (q.variant.kind !== "chain") throw new Error("unreachable");
  const { path } = q.variant;
  const { chain, answer } = q;
  const L = chain.length;
  const last = path[path.length - 1];
  const steps = searches(path, chain);
  const options: Mistake[] = ["wrong", "distractor"];
  if (L >= 2) options.push("early");
  // A long chain (5 hops and more) may take hops + 2 steps, so a repeated search is among its mistakes too:
  // the one mistake that still ends in the right answer, so some sub-optimal demonstrations succeed.
  if (L >= 5 || L + 2 <= MAX_DEMO_STEPS) options.push("repeat");
  const mistake = rng.pick(options);
  switch (mistake) {
    case "early": {
      const h = rng.int(L - 1);
      return [...steps.slice(0, h + 1), final(path[h], chain[h], chain[h + 1])];
    }
    case "wrong": {
      const pool = [...new Set(relRange(kb, last))].filter((x) => x !== answer);
      return [...steps, final(last, chain[L - 1], rng.pick(pool))];
    }
    case "distractor": {
      const h = rng.int(L);
      const type = kb.typeOf(chain[h])!;
      const others = kb.namesOf(type).filter((x) => x !== chain[h]);
      const misleading = others.filter((x) => followChain(kb, x, path.slice(h)).answer !== answer);
      const s = rng.pick(misleading.length > 0 ? misleading : others);
      const alt = followChain(kb, s, path.slice(h));
      const wrongTurn = h === 0 ? first(path[0], s) : hop(path[h - 1], chain[h - 1], s);
      const rest = alt.chain.slice(1).map((e, i) => hop(path[h + i], alt.chain[i], e));
      return [...steps.slice(0, h), wrongTurn, ...rest, final(last, alt.chain[alt.chain.length - 1], alt.answer)];
    }
    case "repeat": {
      const h = rng.int(L);
      return [...steps.slice(0, h + 1), steps[h], ...steps.slice(h + 1), final(last, chain[L - 1], answer)];
    }
  }
}

function comparePlan(kb: KnowledgeBase, q: Question, rng: Rng): string[][] {
  if (q.variant.kind !== "compare") throw new Error("unreachable");
  const { rel } = q.variant;
  const [a, b] = q.chain;
  const [ya, yb] = q.years!;
  const mistake = rng.pick<Mistake>(["early", "wrong", "distractor", "repeat"]);
  switch (mistake) {
    case "early":
      return [first(rel, a), compareFinal(rel, a, ya, a)];
    case "wrong":
      return [first(rel, a), compareNext(rel, a, ya, b), compareFinal(rel, b, yb, q.answer === a ? b : a)];
    case "distractor": {
      const others = kb.namesOf(q.variant.type).filter((x) => x !== a && x !== b);
      if (others.length === 0) return [first(rel, a), compareFinal(rel, a, ya, a)];
      const misleading = others.filter((x) => earlier(kb, rel, a, x) !== q.answer);
      const s = rng.pick(misleading.length > 0 ? misleading : others);
      const ys = applyRel(kb, rel, s);
      return [first(rel, a), compareNext(rel, a, ya, s), compareFinal(rel, s, ys, earlier(kb, rel, a, s))];
    }
    case "repeat":
      return [first(rel, a), first(rel, a), compareNext(rel, a, ya, b), compareFinal(rel, b, yb, q.answer)];
  }
}

/**
 * The fact the optimal demonstrator stated the step before, in the state where `visible` is in view: on
 * a chain whose passage j is the furthest in view, the hop from j − 1 to j (none before the second
 * search). Comparisons state both years in their own steps already.
 */
function previousFact(kb: KnowledgeBase, q: Question, visible: ReadonlySet<number>): string[] {
  if (q.variant.kind !== "chain") return [];
  const j = furthestInView(kb, q.chain, visible);
  return j >= 1 ? statedFact(hop(q.variant.path[j - 1], q.chain[j - 1], q.chain[j])) : [];
}

export function makeDemonstrator(kb: KnowledgeBase, q: Question, rng: Rng, suboptimal: boolean, verbose = false): (episode: Episode) => string[] {
  const plan = suboptimal ? (q.variant.kind === "chain" ? chainPlan(kb, q, rng) : comparePlan(kb, q, rng)) : undefined;
  return (episode) => {
    if (!(episode instanceof MultihopEpisode)) throw new Error("multihop-qa demonstrator: the episode was not started by multihop-qa");
    if (episode.task.id !== q.id) throw new Error(`multihop-qa demonstrator: made for task ${q.id}, given an episode of ${episode.task.id}`);
    const t = episode.stepCount;
    if (plan && t < plan.length) return verbose ? [...restate(q), ...(t > 0 ? statedFact(plan[t - 1]) : []), ...plan[t]] : [...plan[t]];
    const visible = new Set(episode.visibleDocs());
    const action = optimalAction(kb, q, visible);
    return verbose ? [...restate(q), ...previousFact(kb, q, visible), ...action] : action;
  };
}
