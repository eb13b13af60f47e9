// paper-search: find one paper in a generated corpus with `search [ query ]` (BM25 over titles,
// abstracts, authors and years; the top results as `p17 : title words ( Author , year )`),
// `open [ p17 ]` (venue, abstract and references with their authors) and `submit [ p17 ]`, which ends
// the episode with reward 1 for the right paper, else 0.
//
// Families: in-domain author-year, cites, cited-by (train/test: disjoint task sets, split by a hash of
// the task id); held-out (ood) unseen-combination (author + year + citation, a constraint combination
// never posed in training) and citation-chain (two citation hops). Every task is kept only if the
// optimal demonstrator submits the answer within `stepBudget` steps.
//
// spec.environment.config (all optional): papers 60, authors 24, maxPapersPerAuthor 3, years 10,
// maxRefs 3, topK 3, maxContextWords 96, testFraction 0.2, stepBudget 5.
import type { Rng } from "../../core/rng.ts";
import { parserMessages, parserVocabulary } from "../action-parser.ts";
import type { Environment, Episode, Split, Task } from "../environment.ts";
import { type PaperSearchConfig, parsePaperSearchConfig } from "./config.ts";
import { Corpus } from "./corpus.ts";
import { DEMONSTRATOR_WORDS, makeDemonstrator, optimalMove } from "./demonstrator.ts";
import { HEAD, MAX_ECHO, NEEDS_ONE, NO_RESULTS, OVER, PaperEpisode, SUBMITTED, UNKNOWN_ID } from "./episode.ts";
import { enumerate, FAMILIES, LONGEST_PROMPT, type PaperQuery, parseQueryId, promptWords, queryId, resolve } from "./tasks.ts";
import { END, OBS, TEMPLATE_WORDS, TOOLS } from "./words.ts";

export type { PaperSearchConfig } from "./config.ts";
export { PAPER_SEARCH_DEFAULTS } from "./config.ts";

const SPLITS: readonly Split[] = ["train", "test", "ood"];

/** FNV-1a over a string, 32 bits. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class PaperSearch implements Environment {
  readonly name = "paper-search";
  readonly families = { train: [...FAMILIES.train] as string[], ood: [...FAMILIES.ood] as string[] };
  readonly config: PaperSearchConfig;
  readonly corpus: Corpus;
  private readonly vocab: string[];
  private readonly vocabSet: Set<string>;
  /** Tasks by split and family, in a stable order. */
  private readonly pool = new Map<string, Task[]>();

  constructor(config: Record<string, unknown>, seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`paper-search: seed must be an integer, got ${seed}`);
    const cfg = parsePaperSearchConfig(config);
    const minWords = HEAD.length + LONGEST_PROMPT + Math.max(searchBlockWords(cfg), openBlockWords(cfg)) + noteWords();
    if (cfg.maxContextWords < minWords) {
      throw new Error(
        `spec.environment.config.maxContextWords: expected at least ${minWords} (the longest goal, one evidence block and a note), got ${cfg.maxContextWords}`,
      );
    }
    this.config = cfg;
    this.corpus = new Corpus(cfg, seed);
    const grammar = [
      OBS,
      END,
      ...TEMPLATE_WORDS,
      ...HEAD,
      ...NO_RESULTS,
      ...SUBMITTED,
      ...UNKNOWN_ID,
      ...NEEDS_ONE,
      ...OVER,
      ...DEMONSTRATOR_WORDS,
      ...parserVocabulary(TOOLS),
    ];
    this.vocab = [...new Set([...grammar, ...this.corpus.words()])].sort();
    this.vocabSet = new Set(this.vocab);
    for (const family of [...FAMILIES.train, ...FAMILIES.ood]) {
      for (const q of enumerate(this.corpus, family)) {
        if (!this.solvable(q)) continue;
        const split: Split = FAMILIES.ood.includes(family as never)
          ? "ood"
          : hashString(`${seed}|${queryId(q)}`) % 10000 < cfg.testFraction * 10000
            ? "test"
            : "train";
        const key = `${split}/${family}`;
        this.pool.set(key, [...(this.pool.get(key) ?? []), this.toTask(q, split)]);
      }
    }
    for (const split of SPLITS) {
      for (const family of split === "ood" ? this.families.ood : this.families.train) {
        if (!this.pool.get(`${split}/${family}`)?.length)
          throw new Error(`paper-search: the corpus has no ${split} tasks of family ${family}; raise spec.environment.config.papers`);
      }
    }
  }

  vocabulary(): string[] {
    return [...this.vocab];
  }

  /** Every task of a split (optionally one family), in a stable order. */
  tasks(split: Split, family?: string): Task[] {
    const families = family ? [family] : split === "ood" ? this.families.ood : this.families.train;
    return families.flatMap((f) => this.pool.get(`${split}/${f}`) ?? []);
  }

  sampleTask(rng: Rng, split: Split, family?: string): Task {
    if (!SPLITS.includes(split)) throw new Error(`paper-search: unknown split "${split}" (have: ${SPLITS.join(", ")})`);
    const families = split === "ood" ? this.families.ood : this.families.train;
    const fam = family ?? rng.pick(families);
    if (!families.includes(fam)) throw new Error(`paper-search: family "${fam}" is not in the ${split} split (have: ${families.join(", ")})`);
    return rng.pick(this.pool.get(`${split}/${fam}`)!);
  }

  async start(task: Task): Promise<Episode> {
    this.query(task);
    return new PaperEpisode(task, this.corpus, this.vocabSet, this.config.maxContextWords);
  }

  demonstrator(task: Task, rng: Rng, suboptimal: boolean): (episode: Episode) => Promise<string[]> {
    const act = makeDemonstrator(this.query(task), rng, suboptimal);
    return async (episode) => act(episode);
  }

  private query(task: Task): PaperQuery {
    const q = parseQueryId(task.id);
    const answer = q ? resolve(this.corpus, q) : null;
    if (!q || !answer || answer.id !== task.answer) throw new Error(`paper-search: task ${task.id} does not belong to this corpus`);
    return q;
  }

  private toTask(q: PaperQuery, split: Split): Task {
    return { id: queryId(q), family: q.family, split, prompt: promptWords(q), answer: resolve(this.corpus, q)!.id };
  }

  /** The optimal demonstrator submits the answer within the step budget. */
  private solvable(q: PaperQuery): boolean {
    const task = this.toTask(q, "train");
    const ep = new PaperEpisode(task, this.corpus, new Set(), 1_000_000);
    for (let t = 0; t < this.config.stepBudget; t++) {
      const out = ep.stepSync(optimalMove(ep, q).words);
      if (out.done) return out.success;
    }
    return false;
  }
}

function searchBlockWords(cfg: PaperSearchConfig): number {
  return 2 + 1 + MAX_ECHO + 1 + cfg.topK * 10;
}

function openBlockWords(cfg: PaperSearchConfig): number {
  return 2 + 7 + 5 + 2 + 4 * cfg.maxRefs;
}

function noteWords(): number {
  return 2 + Math.max(NO_RESULTS.length, ...parserMessages(TOOLS).map((m) => 2 + m.split(" ").length), UNKNOWN_ID.length, NEEDS_ONE.length);
}

export function createPaperSearch(config: Record<string, unknown>, seed: number): Environment {
  return new PaperSearch(config, seed);
}
