// multihop-qa: multi-hop question answering over a seeded knowledge base of fictional entities with a
// BM25 `search [ query ]` tool and `answer [ text ]` to finish (reward 1 for an exact match, else 0,
// only on the final step). In-domain family: bridge (2 hops; train/validation/test splits over disjoint
// (question, anchor) pairs). Held-out families (ood split): comparison and compositional (3–4 hops).
//
// spec.environment.config (all optional): people 24, films 12, cities 8, companies 8 (KB size),
// topK 2 (passages per search), maxPassages 2 (evidence kept in context), maxContextWords 96,
// testFraction 0.25 (share of bridge questions held out for the test split), validationFraction 0.1 (the
// next share, for the validation split; carved out of what was train, so test is what it always was),
// freshFacts false, longChains false, verboseReasoning false. At the default KB (44 bridge questions) that is 7–18 test and 4–5 validation
// questions (seeds 1–3); at the benchmark's (24 films, 12 companies: 84) 9–23 and 8–11. A KB too small to
// hold any validation question serves no validation split (`splits`), so evaluation leaves it out.
//
// freshFacts: every task comes with a knowledge base of its own — the same names, facts drawn anew from a
// seed in the task id — and the validation, test and OOD tasks' fact seeds are never training ones, nor
// each other's (envs/held-out.ts: 2²⁸ fact seeds per split, train and test the ones they always were;
// validation's lie above all of them). Answers can then not be recalled, only read: the agent must search,
// read the passage and copy the entity. Without it the splits share one knowledge base, and a held-out
// question mostly asks for a fact training taught.
//
// longChains and verboseReasoning (issue #13: horizons where credit assignment matters): the in-domain
// family is long-chain (5 hops — "in which region was the founder of the employer of the director of X
// born ?" — five searches and the answer, 6 steps) instead of bridge, over the same kind of splits; and
// the demonstrator restates the question's chain and the fact it read before every call (31–39 tokens
// a step, ~215 an episode; reasoning.ts). Either works without the other.
import type { Rng } from "../../core/rng.ts";
import { parserMessages, parserVocabulary } from "../action-parser.ts";
import { SPLITS, type Environment, type Episode, type Split, type Task } from "../environment.ts";
import { drawWorldSeed } from "../held-out.ts";
import { type MultihopQaConfig, parseConfig } from "./config.ts";
import { demonstratorWords, makeDemonstrator } from "./demonstrator.ts";
import { episodeWords, frameWords, MultihopEpisode, TOOLS } from "./episode.ts";
import { KnowledgeBase, REGIONS, templateWords } from "./knowledge-base.ts";
import {
  askableAnchors,
  type Families,
  familiesFor,
  longestPrompt,
  parseTaskId,
  questionWords,
  resolveQuestion,
  sampleQuestion,
  toTask,
  VARIANTS,
} from "./questions.ts";

export type { MultihopQaConfig } from "./config.ts";
export { DEFAULT_CONFIG } from "./config.ts";

/** The grammar: every word the environment or its demonstrator can write that is not a name or a year. */
function grammarWords(verbose: boolean): string[] {
  return [...new Set([...questionWords(), ...templateWords(), ...REGIONS, ...episodeWords(), ...demonstratorWords(verbose), ...parserVocabulary(TOOLS)])];
}

/** `spec.environment.config` checked and defaulted; the context bound must fit the longest question served plus a note. */
export function parseMultihopQaConfig(config: Record<string, unknown> | undefined): MultihopQaConfig {
  const longestError = Math.max(...parserMessages(TOOLS).map((m) => m.split(" ").length));
  const frame = frameWords(longestError);
  const longChains = config?.longChains === 1;
  return parseConfig(config, frame.head + longestPrompt(familiesFor(longChains)) + frame.note);
}

export class MultihopQa implements Environment {
  readonly name = "multihop-qa";
  readonly families: Families;
  readonly splits: readonly Split[];
  readonly config: MultihopQaConfig;
  readonly kb: KnowledgeBase;
  private readonly vocab: string[];
  private readonly seed: number;
  private readonly reserved: ReadonlySet<string>;
  /** freshFacts: the knowledge bases of recent tasks by fact seed (building one is a BM25 index). */
  private readonly factKbs = new Map<number, KnowledgeBase>();

  constructor(config: Record<string, unknown>, seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`multihop-qa: seed must be an integer, got ${seed}`);
    this.config = parseMultihopQaConfig(config);
    const served = familiesFor(this.config.longChains === 1);
    this.families = { train: [...served.train], ood: [...served.ood] };
    const grammar = grammarWords(this.config.verboseReasoning === 1);
    this.seed = seed;
    this.reserved = new Set(grammar.map((w) => w.toLowerCase()));
    this.kb = new KnowledgeBase(this.config, seed, this.config, this.reserved);
    // Without fresh facts the validation share of a small KB may hold no question at all.
    const noValidation = !this.config.freshFacts && this.tasks("validation").length === 0;
    this.splits = noValidation ? SPLITS.filter((x) => x !== "validation") : SPLITS;
    const facts = this.config.freshFacts ? this.kb.yearWords : [];
    this.vocab = [...new Set([...grammar, ...this.kb.words(), ...facts])].sort();
  }

  vocabulary(): string[] {
    return [...this.vocab];
  }

  sampleTask(rng: Rng, split: Split, family?: string): Task {
    if (!SPLITS.includes(split)) throw new Error(`multihop-qa: unknown split "${split}" (have: ${SPLITS.join(", ")})`);
    if (!this.config.freshFacts) return toTask(sampleQuestion(this.kb, rng, split, family, { families: this.families }));
    const factSeed = drawWorldSeed(rng, split);
    const q = sampleQuestion(this.kbOf(factSeed), rng, split, family, { allAnchors: true, families: this.families });
    return toTask({ ...q, id: `${FACTS_PREFIX}${factSeed}:${q.id}`, split });
  }

  /** Every task of an in-domain split (the in-domain family's questions over that split's anchors), in a stable order. */
  tasks(split: "train" | "validation" | "test"): Task[] {
    const out: Task[] = [];
    for (const v of VARIANTS) {
      if (v.kind !== "chain" || !this.families.train.includes(v.family)) continue;
      for (const anchor of askableAnchors(this.kb, v, split)) out.push(toTask(resolveQuestion(this.kb, v, [anchor])));
    }
    return out;
  }

  async start(task: Task): Promise<Episode> {
    const { kb, question } = this.question(task);
    return new MultihopEpisode(task, question, kb, this.config);
  }

  demonstrator(task: Task, rng: Rng, suboptimal: boolean): (episode: Episode) => Promise<string[]> {
    const { kb, question } = this.question(task);
    const act = makeDemonstrator(kb, question, rng, suboptimal, this.config.verboseReasoning === 1);
    return async (episode) => act(episode);
  }

  /** The knowledge base of fact seed `factSeed` (freshFacts), built once and kept for recent tasks. */
  private kbOf(factSeed: number): KnowledgeBase {
    let kb = this.factKbs.get(factSeed);
    if (!kb) {
      kb = new KnowledgeBase(this.config, this.seed, this.config, this.reserved, factSeed);
      if (this.factKbs.size >= FACT_KB_CACHE) this.factKbs.delete(this.factKbs.keys().next().value as number);
      this.factKbs.set(factSeed, kb);
    }
    return kb;
  }

  private question(task: Task) {
    const fresh = FACTS_ID.exec(task.id);
    if (fresh && !this.config.freshFacts) throw new Error(`multihop-qa: task ${task.id} needs config.freshFacts (it has a knowledge base of its own)`);
    if (!fresh && this.config.freshFacts) throw new Error(`multihop-qa: task ${task.id} has no fact seed, but config.freshFacts is on`);
    const kb = fresh ? this.kbOf(Number(fresh[1])) : this.kb;
    const question = { ...parseTaskId(kb, fresh ? fresh[2] : task.id), id: task.id };
    const family = question.variant.family;
    if (!this.families.train.includes(family) && !this.families.ood.includes(family))
      throw new Error(`multihop-qa: task ${task.id} is of family ${family}, which this config does not serve (config.longChains)`);
    if (question.answer !== task.answer)
      throw new Error(`multihop-qa: task ${task.id} does not belong to this knowledge base (answer ${task.answer}, expected ${question.answer})`);
    return { kb, question };
  }
}

const FACTS_PREFIX = "facts";
const FACTS_ID = /^facts(\d+):(.*)$/;
const FACT_KB_CACHE = 512;
export function createMultihopQa(config: Record<string, unknown>, seed: number): Environment {
  return new MultihopQa(config, seed);
}
