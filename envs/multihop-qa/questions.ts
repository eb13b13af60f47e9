// Question families. A chain question starts at an anchor entity and follows a path of relations
// (bridge: 2 hops, in-domain; compositional: 3–4 hops, held out; long-chain: 5 hops, in-domain instead of
// bridge under config.longChains); a comparison question asks which of two entities comes first by a
// year (held out). Task ids encode the question, so a task can be
// rebuilt from its id alone: `<family>/<variant>/<entity>[+<entity>]`.
import type { Rng } from "../../core/rng.ts";
import type { Environment, Split, Task } from "../environment.ts";
import { type EntityType, type KnowledgeBase, REGIONS } from "./knowledge-base.ts";

export type Rel = "director" | "birthplace" | "birthyear" | "employer" | "founder" | "headquarters" | "region" | "releaseyear" | "foundingyear";

/** How the demonstrator names each relation ("the <words> of X is Y"). */
export const REL_WORDS: Record<Rel, string[]> = {
  director: ["director"],
  birthplace: ["birthplace"],
  birthyear: ["birth", "year"],
  employer: ["employer"],
  founder: ["founder"],
  headquarters: ["headquarters"],
  region: ["region"],
  releaseyear: ["release", "year"],
  foundingyear: ["founding", "year"],
};

/** What a relation maps to: an entity type, a year of one kind, or a region word. */
const REL_RANGE: Record<Rel, EntityType | "birthyear" | "releaseyear" | "foundingyear" | "region"> = {
  director: "person",
  birthplace: "city",
  birthyear: "birthyear",
  employer: "company",
  founder: "person",
  headquarters: "city",
  region: "region",
  releaseyear: "releaseyear",
  foundingyear: "foundingyear",
};

export function applyRel(kb: KnowledgeBase, rel: Rel, name: string): string {
  switch (rel) {
    case "director":
      return kb.film(name).director;
    case "birthplace":
      return kb.person(name).birthplace;
    case "birthyear":
      return kb.person(name).birthYear;
    case "employer":
      return kb.person(name).employer;
    case "founder":
      return kb.company(name).founder;
    case "headquarters":
      return kb.company(name).city;
    case "region":
      return kb.city(name).region;
    case "releaseyear":
      return kb.film(name).year;
    case "foundingyear":
      return kb.company(name).year;
  }
}

/** Every value `rel` can take in this KB (the candidates a wrong answer of the right type is drawn from). */
export function relRange(kb: KnowledgeBase, rel: Rel): string[] {
  const range = REL_RANGE[rel];
  switch (range) {
    case "birthyear":
      return kb.people.map((p) => p.birthYear);
    case "releaseyear":
      return kb.films.map((f) => f.year);
    case "foundingyear":
      return kb.companies.map((c) => c.year);
    case "region":
      return [...REGIONS];
    default:
      return kb.namesOf(range);
  }
}

export interface ChainVariant {
  kind: "chain";
  family: string;
  name: string;
  anchor: EntityType;
  path: Rel[];
  prompt: (x: string) => string[];
}

export interface CompareVariant {
  kind: "compare";
  family: string;
  name: string;
  type: EntityType;
  rel: Rel;
  prompt: (a: string, b: string) => string[];
}

export type Variant = ChainVariant | CompareVariant;

const w = (s: string) => s.split(" ");

export const VARIANTS: readonly Variant[] = [
  // bridge (in-domain, HotpotQA-like): 2 hops.
  {
    kind: "chain",
    family: "bridge",
    name: "birthplace",
    anchor: "film",
    path: ["director", "birthplace"],
    prompt: (x) => w(`where was the director of ${x} born ?`),
  },
  {
    kind: "chain",
    family: "bridge",
    name: "employer",
    anchor: "film",
    path: ["director", "employer"],
    prompt: (x) => w(`which company does the director of ${x} work for ?`),
  },
  {
    kind: "chain",
    family: "bridge",
    name: "birthyear",
    anchor: "film",
    path: ["director", "birthyear"],
    prompt: (x) => w(`when was the director of ${x} born ?`),
  },
  {
    kind: "chain",
    family: "bridge",
    name: "founder-birthplace",
    anchor: "company",
    path: ["founder", "birthplace"],
    prompt: (x) => w(`where was the founder of ${x} born ?`),
  },
  // comparison (held out, 2Wiki-like): two lookups, then compare years.
  { kind: "compare", family: "comparison", name: "born-first", type: "person", rel: "birthyear", prompt: (a, b) => w(`who was born first , ${a} or ${b} ?`) },
  {
    kind: "compare",
    family: "comparison",
    name: "released-first",
    type: "film",
    rel: "releaseyear",
    prompt: (a, b) => w(`which film was released first , ${a} or ${b} ?`),
  },
  {
    kind: "compare",
    family: "comparison",
    name: "founded-first",
    type: "company",
    rel: "foundingyear",
    prompt: (a, b) => w(`which company was founded first , ${a} or ${b} ?`),
  },
  // compositional (held out, MuSiQue-like): 3–4 hops.
  {
    kind: "chain",
    family: "compositional",
    name: "region",
    anchor: "film",
    path: ["director", "birthplace", "region"],
    prompt: (x) => w(`in which region was the director of ${x} born ?`),
  },
  {
    kind: "chain",
    family: "compositional",
    name: "headquarters",
    anchor: "film",
    path: ["director", "employer", "headquarters"],
    prompt: (x) => w(`in which city is the employer of the director of ${x} based ?`),
  },
  {
    kind: "chain",
    family: "compositional",
    name: "founder-birthplace",
    anchor: "film",
    path: ["director", "employer", "founder", "birthplace"],
    prompt: (x) => w(`where was the founder of the employer of the director of ${x} born ?`),
  },
  // long-chain (in-domain under config.longChains): 5 hops, six steps. Each hop leaves one entity type for
  // another by a different pair (film → person → company → person → city → region), so the last two
  // passages in view tell a policy which hop it is at, even with only two passages kept.
  {
    kind: "chain",
    family: "long-chain",
    name: "founder-region",
    anchor: "film",
    path: ["director", "employer", "founder", "birthplace", "region"],
    prompt: (x) => w(`in which region was the founder of the employer of the director of ${x} born ?`),
  },
];

export type Families = Environment["families"];

/** The default families: bridge in-domain, comparison and compositional held out. */
const FAMILIES: Families = { train: ["bridge"], ood: ["comparison", "compositional"] };

/** config.longChains: long-chain in-domain instead of bridge; the same held-out families. */
const LONG_FAMILIES: Families = { train: ["long-chain"], ood: FAMILIES.ood };

/** The families an environment of this config serves. */
export function familiesFor(longChains: boolean): Families {
  return longChains ? LONG_FAMILIES : FAMILIES;
}

/** In-domain families: their questions are split into train, validation and test; every other is ood. */
const IN_DOMAIN = new Set([...FAMILIES.train, ...LONG_FAMILIES.train]);

const PLACEHOLDER = "\u0000";

/** Every word of every question template (entity names excluded). */
export function questionWords(): string[] {
  const words = new Set<string>();
  for (const v of VARIANTS)
    for (const x of v.kind === "chain" ? v.prompt(PLACEHOLDER) : v.prompt(PLACEHOLDER, PLACEHOLDER)) if (x !== PLACEHOLDER) words.add(x);
  return [...words];
}

/** The longest prompt any variant of `families` can produce, in words. */
export function longestPrompt(families: Families): number {
  const served = VARIANTS.filter((v) => families.train.includes(v.family) || families.ood.includes(v.family));
  return Math.max(...served.map((v) => (v.kind === "chain" ? v.prompt(PLACEHOLDER) : v.prompt(PLACEHOLDER, PLACEHOLDER)).length));
}

/** A resolved question: what to look up, in which order, and the gold answer. */
export interface Question {
  id: string;
  variant: Variant;
  /** The anchor (chain) or the two compared entities. */
  entities: string[];
  /** Entities whose passages hold the evidence, in search order. For a chain, chain[i + 1] = path[i](chain[i]). */
  chain: string[];
  /** For comparisons: the year of each compared entity. */
  years?: string[];
  answer: string;
  split: Split;
  prompt: string[];
}

/** Follows `path` from `start`: the entities visited (start included) and the final value. */
export function followChain(kb: KnowledgeBase, start: string, path: readonly Rel[]): { chain: string[]; answer: string } {
  const chain = [start];
  let cur = start;
  path.forEach((rel, i) => {
    cur = applyRel(kb, rel, cur);
    if (i < path.length - 1) chain.push(cur);
  });
  return { chain, answer: cur };
}

/**
 * Whether every entity of the chain is a different one. A long chain can come back to where it was (the
 * director founded the company they work for): its passage is then in view already and the question
 * takes fewer steps than its hops, so in-domain questions skip such anchors.
 */
export function hasDistinctChain(kb: KnowledgeBase, anchor: string, path: readonly Rel[]): boolean {
  const { chain } = followChain(kb, anchor, path);
  return new Set(chain).size === chain.length;
}

/** The earlier of two entities by their year under `rel`. */
export function earlier(kb: KnowledgeBase, rel: Rel, a: string, b: string): string {
  return Number(applyRel(kb, rel, a)) <= Number(applyRel(kb, rel, b)) ? a : b;
}

export function resolveQuestion(kb: KnowledgeBase, variant: Variant, entities: string[]): Question {
  const id = `${variant.family}/${variant.name}/${entities.join("+")}`;
  if (variant.kind === "chain") {
    if (entities.length !== 1 || kb.typeOf(entities[0]) !== variant.anchor) throw new Error(`multihop-qa: task ${id}: expected one ${variant.anchor}`);
    const { chain, answer } = followChain(kb, entities[0], variant.path);
    const split: Split = IN_DOMAIN.has(variant.family) ? kb.questionSplit(variant.name, entities[0]) : "ood";
    return { id, variant, entities, chain, answer, split, prompt: variant.prompt(entities[0]) };
  }
  const [a, b] = entities;
  if (entities.length !== 2 || a === b || kb.typeOf(a) !== variant.type || kb.typeOf(b) !== variant.type) {
    throw new Error(`multihop-qa: task ${id}: expected two different ${variant.type} entities`);
  }
  return {
    id,
    variant,
    entities,
    chain: [a, b],
    years: [applyRel(kb, variant.rel, a), applyRel(kb, variant.rel, b)],
    answer: earlier(kb, variant.rel, a, b),
    split: "ood",
    prompt: variant.prompt(a, b),
  };
}

export function parseTaskId(kb: KnowledgeBase, id: string): Question {
  const [family, name, names, ...rest] = id.split("/");
  const variant = VARIANTS.find((v) => v.family === family && v.name === name);
  if (!variant || names === undefined || rest.length > 0) throw new Error(`multihop-qa: unknown task id "${id}"`);
  return resolveQuestion(kb, variant, names.split("+"));
}

/**
 * The anchors a chain variant may ask about in `split` (every split's where undefined), in the knowledge
 * base's order: those whose chain never comes back to an entity it already visited.
 */
export function askableAnchors(kb: KnowledgeBase, v: ChainVariant, split: Split | undefined): string[] {
  return kb.namesOf(v.anchor).filter((a) => (split === undefined || kb.questionSplit(v.name, a) === split) && hasDistinctChain(kb, a, v.path));
}

export function toTask(q: Question): Task {
  return { id: q.id, family: q.variant.family, split: q.split, prompt: [...q.prompt], answer: q.answer };
}

/**
 * A question of `split`. `allAnchors`: every in-domain anchor may be asked about (a knowledge base drawn
 * for one split alone, where the split is the knowledge base's, not the anchor's).
 */
export function sampleQuestion(
  kb: KnowledgeBase,
  rng: Rng,
  split: Split,
  family: string | undefined,
  opts: { allAnchors?: boolean; families: Families },
): Question {
  const served = opts.families;
  const families = split === "ood" ? served.ood : served.train;
  if (family !== undefined && !families.includes(family)) {
    throw new Error(`multihop-qa: family "${family}" is not in the ${split} split (have: ${families.join(", ")})`);
  }
  const fam = family ?? rng.pick(families);
  const variant = rng.pick(VARIANTS.filter((v) => v.family === fam));
  if (variant.kind === "chain") {
    if (split === "ood") return resolveQuestion(kb, variant, [rng.pick(kb.namesOf(variant.anchor))]);
    // Draw uniformly over the split's questions of this family (a variant may have few in a split).
    const pool = VARIANTS.filter((v) => v.family === fam && v.kind === "chain").flatMap((v) =>
      v.kind === "chain" ? askableAnchors(kb, v, opts.allAnchors ? undefined : split).map((a) => [v, a] as const) : [],
    );
    if (pool.length === 0)
      throw new Error(`multihop-qa: the ${split} split has no ${fam} questions (raise the KB size or change testFraction / validationFraction)`);
    const [v, anchor] = rng.pick(pool);
    return resolveQuestion(kb, v, [anchor]);
  }
  const names = kb.namesOf(variant.type);
  const a = rng.pick(names);
  const b = rng.pick(names.filter((x) => x !== a));
  return resolveQuestion(kb, variant, [a, b]);
}
