// The generated corpus: papers with an id word (p17), a three-word title, one author, a year, a venue,
// a five-word abstract and references to earlier papers by other authors (distinct authors within one
// reference list, so "the paper by X cited by P" is unambiguous). Search is BM25 over title, abstract,
// author and year; every document has the same length, so a paper matching more query words always
// ranks above one matching fewer.
//
// A corpus seed (freshCorpus) redraws everything but the names: the same authors, years and paper ids
// (so one vocabulary per environment seed), another corpus — who wrote which paper when, its title and
// abstract, which id it has and what it cites.
import { Rng } from "../../core/rng.ts";
import { Bm25Index } from "../search/bm25.ts";
import type { PaperSearchConfig } from "./config.ts";
import { ABSTRACT_VERBS, AUTHOR_NAMES, DATASETS, FIRST_YEAR, TITLE_ADJ, TITLE_METHOD, TITLE_TOPIC, VENUES } from "./words.ts";

export interface Paper {
  /** Index in `Corpus.papers` (chronological). */
  index: number;
  id: string;
  title: string[];
  author: string;
  year: string;
  venue: string;
  abstract: string[];
  /** Indices of the cited papers (all earlier, all by distinct other authors). */
  refs: number[];
}

/** Chance that an author with two or more papers publishes two of them in the same year. */
const SAME_YEAR_PROB = 0.4;

export class Corpus {
  readonly papers: Paper[];
  readonly authors: string[];
  readonly years: string[];
  private readonly byId = new Map<string, number>();
  private readonly index: Bm25Index;

  constructor(
    readonly cfg: PaperSearchConfig,
    seed: number,
    corpusSeed?: number,
  ) {
    const names = new Rng((seed ^ 0x70a9e5) >>> 0);
    this.authors = names.shuffle([...AUTHOR_NAMES]).slice(0, cfg.authors);
    // Without a corpus seed the papers continue the names' stream, as they always have (one corpus per seed).
    const rng = corpusSeed === undefined ? names : new Rng((Math.imul(seed, 0x9e3779b1) ^ Math.imul(corpusSeed + 1, 0x85ebca6b)) >>> 0);
    this.years = Array.from({ length: cfg.years }, (_, i) => String(FIRST_YEAR + i));
    const base = Math.floor(cfg.papers / cfg.authors);
    const extra = cfg.papers % cfg.authors;
    const drafts: { author: string; year: number }[] = [];
    rng.shuffle([...this.authors]).forEach((author, i) => {
      const count = base + (i < extra ? 1 : 0);
      const years = Array.from({ length: count }, () => rng.int(cfg.years));
      if (count >= 2 && rng.next() < SAME_YEAR_PROB) years[1] = years[0];
      for (const y of years) drafts.push({ author, year: y });
    });
    rng.shuffle(drafts);
    drafts.sort((a, b) => a.year - b.year);
    const ids = rng.shuffle(Array.from({ length: cfg.papers }, (_, i) => i));
    const titles = new Set<string>();
    this.papers = drafts.map((d, index) => {
      let title: string[];
      do title = [rng.pick(TITLE_ADJ), rng.pick(TITLE_METHOD), rng.pick(TITLE_TOPIC)];
      while (titles.has(title.join(" ")));
      titles.add(title.join(" "));
      const abstract = [rng.pick(ABSTRACT_VERBS), rng.pick(TITLE_ADJ), rng.pick(TITLE_METHOD), "on", rng.pick(DATASETS)];
      return { index, id: `p${ids[index]}`, title, author: d.author, year: this.years[d.year], venue: rng.pick(VENUES), abstract, refs: [] };
    });
    for (const p of this.papers) {
      const earlier = rng.shuffle(this.papers.filter((q) => q.year < p.year && q.author !== p.author));
      const want = 1 + rng.int(cfg.maxRefs);
      const seen = new Set<string>();
      for (const q of earlier) {
        if (p.refs.length >= want) break;
        if (seen.has(q.author)) continue;
        seen.add(q.author);
        p.refs.push(q.index);
      }
    }
    for (const p of this.papers) this.byId.set(p.id, p.index);
    this.index = new Bm25Index(this.papers.map((p) => [...p.title, ...p.abstract, p.author, p.year]));
  }

  paper(id: string): Paper | undefined {
    const i = this.byId.get(id);
    return i === undefined ? undefined : this.papers[i];
  }

  /** Paper indices for `query`, best first, at most topK. */
  search(query: string[]): number[] {
    return this.index.search(query, this.cfg.topK).map((h) => h.doc);
  }

  /** Every word a paper can show. */
  words(): string[] {
    const out = new Set<string>([...this.authors, ...this.years, ...VENUES, ...TITLE_ADJ, ...TITLE_METHOD, ...TITLE_TOPIC, ...ABSTRACT_VERBS, ...DATASETS]);
    for (const p of this.papers) out.add(p.id);
    return [...out];
  }
}
