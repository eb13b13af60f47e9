// paper-search: find one paper in a generated corpus with `search [ query ]` (BM25 over titles,
// abstracts, authors and years; the top results as `p17 : title words ( Author , year )`),
// `open [ p17 ]` (venue, abstract and references with their authors) and `submit [ p17 ]`, which ends
// the episode with reward 1 for the right paper, else 0.
//
// Families: in-domain author-year, cites, cited-by (train/validation/test: disjoint task sets, split by a
// hash of the task id: test below testFraction, validation in the next validationFraction, train above);
// held-out (ood) unseen-combination (author + year + citation, a constraint combination never posed in
// training) and citation-chain (two citation hops). Every task is kept only if the
// optimal demonstrator submits the answer within `stepBudget` steps.
//
// spec.environment.config (all optional): papers 60, authors 24, maxPapersPerAuthor 3, years 10,
// maxRefs 3, topK 3, maxContextWords 96, testFraction 0.2, validationFraction 0.1 (carved out of what was
// train, so test is what it always was), stepBudget 5, freshCorpus 0.
//
// freshCorpus: every task comes with a corpus of its own — the same authors, years and paper ids, the
// papers drawn anew (who wrote what when, titles, citations, which id is which) from a seed in the task id,
// `corpus<seed>:<family>/…` — and corpus seeds are split (envs/held-out.ts: train, test, ood by residue
// mod 3 as they always were, validation above all of them; 2²⁸ corpus seeds each), so no validation, test
// or OOD corpus is ever a training corpus, nor one of another held-out split. The validation and test
// splits are then every in-domain task of their corpora (testFraction and validationFraction are not
// used). An answer can not be recalled, only found: the agent must search, read the results and copy the id. Without it every split shares one corpus, and a held-out question
// mostly asks about papers whose authors, years and citations training taught.
import { Rng } from "../../core/rng.ts";
import { parserMessages, parserVocabulary } from "../action-parser.ts";
import { SPLITS, type Environment, type Episode, type Split, type Task } from "../environment.ts";
import { drawWorldSeed, inDomainSplit } from "../held-out.ts";
import { type PaperSearchConfig, parsePaperSearchConfig } from "./config.ts";
import { Corpus } from "./corpus.ts";
import { DEMONSTRATOR_WORDS, makeDemonstrator, optimalMove } from "./demonstrator.ts";
import { HEAD, MAX_ECHO, NEEDS_ONE, NO_RESULTS, OVER, PaperEpisode, SUBMITTED, UNKNOWN_ID } from "./episode.ts";
import { enumerate, FAMILIES, type Family, LONGEST_PROMPT, type PaperQuery, parseQueryId, promptWords, queryId, resolve } from "./tasks.ts";
import { END, OBS, TEMPLATE_WORDS, TOOLS } from "./words.ts";

export type { PaperSearchConfig } from "./config.ts";
export { PAPER_SEARCH_DEFAULTS } from "./config.ts";

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
  /** Without freshCorpus, validation only where every in-domain family has validation tasks (a small corpus may not). */
  readonly splits: readonly Split[] = SPLITS;
  readonly config: PaperSearchConfig;
  /** The corpus of every task (without freshCorpus); with it, the corpus of no task, kept for its words. */
  readonly corpus: Corpus;
  private readonly seed: number;
  private readonly vocab: string[];
  private readonly vocabSet: Set<string>;
  /** Tasks by split and family, in a stable order (without freshCorpus). */
  private readonly pool = new Map<string, Task[]>();
  /** freshCorpus: the corpora of recent tasks by corpus seed. */
  private readonly corpora = new Map<number, Corpus>();

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
    this.seed = seed;
    // Every corpus of this seed has the same authors, years and ids: its words are the vocabulary.
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
    if (cfg.freshCorpus) {
      // Fails early, naming the fix, where corpora this small rarely pose some family's tasks.
      const probe = new Rng(seed);
      for (const split of SPLITS) for (const family of this.familiesOf(split)) this.sampleTask(probe, split, family);
      return;
    }
    for (const family of [...FAMILIES.train, ...FAMILIES.ood]) {
      for (const q of enumerate(this.corpus, family)) {
        if (!solvable(this.corpus, q, cfg.stepBudget)) continue;
        // Compared in ten-thousandths exactly as the test split always was, so test keeps the same tasks.
        const k = hashString(`${seed}|${queryId(q)}`) % 10000;
        const split: Split = FAMILIES.ood.includes(family as never) ? "ood" : inDomainSplit(k, cfg.testFraction * 10000, cfg.validationFraction * 10000);
        const key = `${split}/${family}`;
        this.pool.set(key, [...(this.pool.get(key) ?? []), toTask(this.corpus, q, split)]);
      }
    }
    const missing = (split: Split) => this.familiesOf(split).find((family) => !this.pool.get(`${split}/${family}`)?.length);
    // A corpus that poses no validation task of some family serves no validation split (evaluation leaves it out).
    if (missing("validation")) this.splits = SPLITS.filter((x) => x !== "validation");
    for (const split of this.splits) {
      const family = missing(split);
      if (family) throw new Error(`paper-search: the corpus has no ${split} tasks of family ${family}; raise spec.environment.config.papers`);
    }
  }

  vocabulary(): string[] {
    return [...this.vocab];
  }

  /** Every task of a split (optionally one family), in a stable order. Not with freshCorpus (no one corpus). */
  tasks(split: Split, family?: string): Task[] {
    if (this.config.freshCorpus) throw new Error("paper-search: with config.freshCorpus every task has a corpus of its own; draw tasks with sampleTask");
    const families = family ? [family] : this.familiesOf(split);
    return families.flatMap((f) => this.pool.get(`${split}/${f}`) ?? []);
  }

  sampleTask(rng: Rng, split: Split, family?: string): Task {
    if (!SPLITS.includes(split)) throw new Error(`paper-search: unknown split "${split}" (have: ${SPLITS.join(", ")})`);
    if (!this.splits.includes(split)) {
      throw new Error(`paper-search: the corpus poses no ${split} task of some family; raise spec.environment.config.papers or validationFraction`);
    }
    const families = this.familiesOf(split);
    const fam = family ?? rng.pick(families);
    if (!families.includes(fam)) throw new Error(`paper-search: family "${fam}" is not in the ${split} split (have: ${families.join(", ")})`);
    if (!this.config.freshCorpus) return rng.pick(this.pool.get(`${split}/${fam}`)!);
    for (let tries = 0; tries < FRESH_TRIES; tries++) {
      const corpusSeed = drawWorldSeed(rng, split);
      const corpus = this.corpusOf(corpusSeed);
      // A uniform draw among the corpus's well-posed queries, rejecting those the demonstrator cannot
      // finish within the step budget: a uniform draw among the solvable ones.
      const queries = enumerate(corpus, fam as Family);
      while (queries.length > 0) {
        const [q] = queries.splice(rng.int(queries.length), 1);
        if (!solvable(corpus, q, this.config.stepBudget)) continue;
        const task = toTask(corpus, q, split);
        return { ...task, id: `${CORPUS_PREFIX}${corpusSeed}:${task.id}` };
      }
    }
    throw new Error(`paper-search: ${FRESH_TRIES} fresh corpora posed no ${split} task of family ${fam}; raise spec.environment.config.papers`);
  }

  async start(task: Task): Promise<Episode> {
    const { corpus } = this.query(task);
    return new PaperEpisode(task, corpus, this.vocabSet, this.config.maxContextWords);
  }

  demonstrator(task: Task, rng: Rng, suboptimal: boolean): (episode: Episode) => Promise<string[]> {
    const act = makeDemonstrator(this.query(task).q, rng, suboptimal);
    return async (episode) => act(episode);
  }

  private familiesOf(split: Split): string[] {
    return split === "ood" ? this.families.ood : this.families.train;
  }

  /** The corpus of corpus seed `corpusSeed` (freshCorpus), built once and kept for recent tasks. */
  private corpusOf(corpusSeed: number): Corpus {
    let c = this.corpora.get(corpusSeed);
    if (!c) {
      c = new Corpus(this.config, this.seed, corpusSeed);
      if (this.corpora.size >= CORPUS_CACHE) this.corpora.delete(this.corpora.keys().next().value as number);
      this.corpora.set(corpusSeed, c);
    }
    return c;
  }

  private query(task: Task): { corpus: Corpus; q: PaperQuery } {
    const fresh = CORPUS_ID.exec(task.id);
    if (fresh && !this.config.freshCorpus) throw new Error(`paper-search: task ${task.id} needs config.freshCorpus (it has a corpus of its own)`);
    if (!fresh && this.config.freshCorpus) throw new Error(`paper-search: task ${task.id} has no corpus seed, but config.freshCorpus is on`);
    const corpus = fresh ? this.corpusOf(Number(fresh[1])) : this.corpus;
    const q = parseQueryId(fresh ? fresh[2] : task.id);
    const answer = q ? resolve(corpus, q) : null;
    if (!q || !answer || answer.id !== task.answer) throw new Error(`paper-search: task ${task.id} does not belong to this corpus`);
    return { corpus, q };
  }
}

const CORPUS_PREFIX = "corpus";
const CORPUS_ID = /^corpus(\d+):(.*)$/;
const CORPUS_CACHE = 512;
/** Fresh corpora drawn before a family counts as never posed (a default corpus poses every family). */
const FRESH_TRIES = 50;
function toTask(corpus: Corpus, q: PaperQuery, split: Split): Task {
  return { id: queryId(q), family: q.family, split, prompt: promptWords(q), answer: resolve(corpus, q)!.id };
}

/** The optimal demonstrator submits the answer within the step budget. */
function solvable(corpus: Corpus, q: PaperQuery, stepBudget: number): boolean {
  const task = toTask(corpus, q, "train");
  const ep = new PaperEpisode(task, corpus, new Set(), 1_000_000);
  for (let t = 0; t < stepBudget; t++) {
    const out = ep.stepSync(optimalMove(ep, q).words);
    if (out.done) return out.success;
  }
  return false;
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
