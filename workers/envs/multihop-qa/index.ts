// multihop-qa: multi-hop question answering over a seeded knowledge base of fictional entities with a
// BM25 `search [ query ]` tool and `answer [ text ]` to finish (reward 1 for an exact match, else 0,
// only on the final step). In-domain family: bridge (2 hops; train/test splits over disjoint anchor
// entities). Held-out families (ood split): comparison and compositional (3–4 hops).
//
// spec.environment.config (all optional): people 24, films 12, cities 8, companies 8 (KB size),
// topK 2 (passages per search), maxPassages 2 (evidence kept in context), maxContextWords 96,
// testFraction 0.25 (share of bridge anchors held out for the test split).
import type { Rng } from "../../../common/rng.ts";
import { parserMessages, parserVocabulary } from "../../action-parser.ts";
import type { Environment, Episode, Split, Task } from "../../environment.ts";
import { type MultihopQaConfig, parseConfig } from "./config.ts";
import { demonstratorWords, makeDemonstrator } from "./demonstrator.ts";
import { episodeWords, frameWords, MultihopEpisode, TOOLS } from "./episode.ts";
import { KnowledgeBase, REGIONS, templateWords } from "./knowledge-base.ts";
import { FAMILIES, longestPrompt, parseTaskId, questionWords, resolveQuestion, sampleQuestion, toTask, VARIANTS } from "./questions.ts";

export type { MultihopQaConfig } from "./config.ts";
export { DEFAULT_CONFIG } from "./config.ts";

const SPLITS: readonly Split[] = ["train", "test", "ood"];

/** The grammar: every word the environment or its demonstrator can write that is not a name or a year. */
function grammarWords(): string[] {
  return [...new Set([...questionWords(), ...templateWords(), ...REGIONS, ...episodeWords(), ...demonstratorWords(), ...parserVocabulary(TOOLS)])];
}

export class MultihopQa implements Environment {
  readonly name = "multihop-qa";
  readonly families = { train: [...FAMILIES.train], ood: [...FAMILIES.ood] };
  readonly config: MultihopQaConfig;
  readonly kb: KnowledgeBase;
  private readonly vocab: string[];

  constructor(config: Record<string, unknown>, seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`multihop-qa: seed must be an integer, got ${seed}`);
    const longestError = Math.max(...parserMessages(TOOLS).map((m) => m.split(" ").length));
    const frame = frameWords(longestError);
    this.config = parseConfig(config, frame.head + longestPrompt() + frame.note);
    const grammar = grammarWords();
    this.kb = new KnowledgeBase(this.config, seed, this.config.testFraction, new Set(grammar.map((w) => w.toLowerCase())));
    this.vocab = [...new Set([...grammar, ...this.kb.words()])].sort();
  }

  vocabulary(): string[] {
    return [...this.vocab];
  }

  sampleTask(rng: Rng, split: Split, family?: string): Task {
    if (!SPLITS.includes(split)) throw new Error(`multihop-qa: unknown split "${split}" (have: ${SPLITS.join(", ")})`);
    return toTask(sampleQuestion(this.kb, rng, split, family));
  }

  /** Every task of an in-domain split (bridge questions over that split's anchors), in a stable order. */
  tasks(split: "train" | "test"): Task[] {
    const out: Task[] = [];
    for (const v of VARIANTS) {
      if (v.kind !== "chain" || !FAMILIES.train.includes(v.family)) continue;
      for (const anchor of this.kb.namesOf(v.anchor)) {
        if (this.kb.isTestQuestion(v.name, anchor) === (split === "test")) out.push(toTask(resolveQuestion(this.kb, v, [anchor])));
      }
    }
    return out;
  }

  async start(task: Task): Promise<Episode> {
    return new MultihopEpisode(task, this.question(task), this.kb, this.config);
  }

  demonstrator(task: Task, rng: Rng, suboptimal: boolean): (episode: Episode) => Promise<string[]> {
    const act = makeDemonstrator(this.kb, this.question(task), rng, suboptimal);
    return async (episode) => act(episode);
  }

  private question(task: Task) {
    const q = parseTaskId(this.kb, task.id);
    if (q.answer !== task.answer)
      throw new Error(`multihop-qa: task ${task.id} does not belong to this knowledge base (answer ${task.answer}, expected ${q.answer})`);
    return q;
  }
}

export function createMultihopQa(config: Record<string, unknown>, seed: number): Environment {
  return new MultihopQa(config, seed);
}
