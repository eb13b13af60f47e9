// The seeded knowledge base: fictional people, films, companies and cities, each described by one short
// templated passage, and a BM25 index over the passages. Every passage names its subject twice, so a
// search for an entity's name ranks that entity's own passage first.
import { Rng } from "../../core/rng.ts";
import { type InDomainSplit, inDomainSplit } from "../held-out.ts";
import { Bm25Index } from "../search/bm25.ts";
import { generateNames } from "./names.ts";

export type EntityType = "person" | "film" | "company" | "city";

export const REGIONS = ["north", "south", "east", "west"] as const;

export interface Person {
  name: string;
  birthplace: string;
  birthYear: string;
  employer: string;
}

export interface Film {
  name: string;
  director: string;
  year: string;
}

export interface Company {
  name: string;
  founder: string;
  year: string;
  city: string;
}

export interface City {
  name: string;
  region: string;
}

export interface KbSizes {
  people: number;
  films: number;
  companies: number;
  cities: number;
}

/** The passage templates (names and years filled in). */
export function personPassage(p: Person): string[] {
  return [p.name, "was", "born", "in", p.birthplace, "in", p.birthYear, ".", p.name, "works", "for", p.employer, "."];
}

export function filmPassage(f: Film): string[] {
  return [f.name, "is", "a", "film", "directed", "by", f.director, ".", f.name, "was", "released", "in", f.year, "."];
}

export function companyPassage(c: Company): string[] {
  return [c.name, "is", "a", "company", "founded", "by", c.founder, "in", c.year, ".", c.name, "is", "based", "in", c.city, "."];
}

export function cityPassage(c: City): string[] {
  return [c.name, "is", "a", "city", ".", c.name, "lies", "in", "the", c.region, "."];
}

/** The fixed words of the passage templates (names, years and regions excluded). */
export function templateWords(): string[] {
  const x = "\u0000";
  const all = [
    ...personPassage({ name: x, birthplace: x, birthYear: x, employer: x }),
    ...filmPassage({ name: x, director: x, year: x }),
    ...companyPassage({ name: x, founder: x, year: x, city: x }),
    ...cityPassage({ name: x, region: x }),
  ];
  return [...new Set(all.filter((w) => w !== x))];
}

/** Words the index ignores (punctuation only; grammar words carry little idf anyway). */
const UNINDEXED = new Set([".", ","]);

/** The year words [start, start + span). */
function yearRange(start: number, span: number): string[] {
  return Array.from({ length: span }, (_, i) => String(start + i));
}

/** `n` distinct years from [start, start + span), in random order. */
function distinctYears(rng: Rng, start: number, span: number, n: number): string[] {
  return rng.shuffle(yearRange(start, span)).slice(0, n);
}

export class KnowledgeBase {
  readonly people: Person[];
  readonly films: Film[];
  readonly companies: Company[];
  readonly cities: City[];
  /** Passage words per document. */
  readonly passages: string[][];
  /** The entity each document describes. */
  readonly subjects: string[];
  /** Salts the hash that puts each bridge question in the train, validation or test split. */
  private readonly splitSalt: number;
  private readonly fractions: { testFraction: number; validationFraction: number };
  private readonly entities = new Map<string, { type: EntityType; doc: number }>();
  private readonly index: Bm25Index;

  /** Every year word any knowledge base of these sizes can contain (its facts may be drawn anew). */
  readonly yearWords: string[];

  /**
   * `reserved`: lower-case grammar words no name may equal. `factSeed`, when given, draws the facts
   * (years, who works where, who directed what …) from their own seed over the same names: the
   * knowledge bases of one env seed then share names, and so a vocabulary, but not facts.
   */
  constructor(sizes: KbSizes, seed: number, fractions: { testFraction: number; validationFraction: number }, reserved: ReadonlySet<string>, factSeed?: number) {
    const nameRng = new Rng(seed);
    const taken = new Set<string>();
    const cityNames = generateNames(nameRng, sizes.cities, taken, reserved);
    const companyNames = generateNames(nameRng, sizes.companies, taken, reserved);
    const personNames = generateNames(nameRng, sizes.people, taken, reserved);
    const filmNames = generateNames(nameRng, sizes.films, taken, reserved);
    // Without a fact seed the facts continue the names' stream, as they always have (same KB per seed).
    const rng = factSeed === undefined ? nameRng : new Rng((seed * 0x9e3779b1) ^ factSeed);

    // Disjoint year ranges per type, so a year word identifies one passage and comparisons never tie.
    const cSpan = Math.max(40, sizes.companies);
    const pStart = Math.max(1930, 1850 + cSpan);
    const pSpan = Math.max(50, sizes.people);
    const fStart = Math.max(1985, pStart + pSpan);
    const fSpan = Math.max(35, sizes.films);
    const companyYears = distinctYears(rng, 1850, cSpan, sizes.companies);
    const personYears = distinctYears(rng, pStart, pSpan, sizes.people);
    const filmYears = distinctYears(rng, fStart, fSpan, sizes.films);
    this.yearWords = [...yearRange(1850, cSpan), ...yearRange(pStart, pSpan), ...yearRange(fStart, fSpan)];

    this.cities = cityNames.map((name) => ({ name, region: rng.pick(REGIONS) }));
    this.companies = companyNames.map((name, i) => ({ name, founder: "", year: companyYears[i], city: rng.pick(cityNames) }));
    this.people = personNames.map((name, i) => ({ name, birthplace: rng.pick(cityNames), birthYear: personYears[i], employer: rng.pick(companyNames) }));
    for (const c of this.companies) c.founder = rng.pick(personNames);
    this.films = filmNames.map((name, i) => ({ name, director: rng.pick(personNames), year: filmYears[i] }));

    const passages: string[][] = [];
    const subjects: string[] = [];
    const add = (name: string, type: EntityType, words: string[]) => {
      this.entities.set(name, { type, doc: passages.length });
      passages.push(words);
      subjects.push(name);
    };
    for (const p of this.people) add(p.name, "person", personPassage(p));
    for (const f of this.films) add(f.name, "film", filmPassage(f));
    for (const c of this.companies) add(c.name, "company", companyPassage(c));
    for (const c of this.cities) add(c.name, "city", cityPassage(c));
    this.passages = passages;
    this.subjects = subjects;
    this.index = new Bm25Index(passages.map((p) => p.filter((w) => !UNINDEXED.has(w))));

    // The test split holds out (question variant, anchor) pairs, not whole entities: every entity is
    // met in training, and a test question asks something about it that training never asked — the
    // HotpotQA dev-set situation. (Holding out entities would instead test copying names the policy
    // has never written, which a model this size cannot learn in a quickstart's budget.)
    this.splitSalt = nameRng.nextUint32();
    this.fractions = { testFraction: fractions.testFraction, validationFraction: fractions.validationFraction };
  }

  /**
   * The split of the in-domain question `variant/anchor` (seeded hash, envs/held-out.ts): test below
   * testFraction, as it always was, validation in the next validationFraction, train above.
   */
  questionSplit(variant: string, anchor: string): InDomainSplit {
    let h = this.splitSalt ^ 0x811c9dc5;
    for (const ch of `${variant}/${anchor}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    return inDomainSplit(h / 4294967296, this.fractions.testFraction, this.fractions.validationFraction);
  }

  typeOf(name: string): EntityType | undefined {
    return this.entities.get(name)?.type;
  }

  /** The document describing `name` (throws for an unknown entity). */
  docOf(name: string): number {
    const e = this.entities.get(name);
    if (!e) throw new Error(`multihop-qa: unknown entity "${name}"`);
    return e.doc;
  }

  namesOf(type: EntityType): string[] {
    switch (type) {
      case "person":
        return this.people.map((e) => e.name);
      case "film":
        return this.films.map((e) => e.name);
      case "company":
        return this.companies.map((e) => e.name);
      case "city":
        return this.cities.map((e) => e.name);
    }
  }

  person(name: string): Person {
    return this.lookup(this.people, name, "person");
  }

  film(name: string): Film {
    return this.lookup(this.films, name, "film");
  }

  company(name: string): Company {
    return this.lookup(this.companies, name, "company");
  }

  city(name: string): City {
    return this.lookup(this.cities, name, "city");
  }

  /** Top-k document indices for the query words. */
  search(query: string[], k: number): number[] {
    return this.index.search(query, k).map((h) => h.doc);
  }

  /** Every word a passage can contain. */
  words(): string[] {
    const set = new Set<string>();
    for (const p of this.passages) for (const w of p) set.add(w);
    for (const r of REGIONS) set.add(r);
    return [...set];
  }

  private lookup<T extends { name: string }>(list: T[], name: string, type: EntityType): T {
    const e = this.entities.get(name);
    if (!e || e.type !== type) throw new Error(`multihop-qa: "${name}" is not a ${type}`);
    return list.find((x) => x.name === name)!;
  }
}
