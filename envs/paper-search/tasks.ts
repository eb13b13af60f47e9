// Task families over one corpus. A query names its constraints; `resolve` returns the single paper that
// satisfies them, or null when none or several do (such queries are never posed). Task ids encode the
// query, `<family>/<word>+<word>…`, so a task can be rebuilt from its id alone.
//   author-year         find the paper by Vardo from 2021                       (train)
//   cites               find the paper by Vardo that cites p4                    (train)
//   cited-by            find the paper by Kasto cited by the paper by Vardo from 2021      (train)
//   unseen-combination  find the paper by Vardo from 2021 that cites p4          (ood: author + year + citation)
//   citation-chain      find the paper by Mirel cited by the paper by Kasto cited by the paper by Vardo from 2021
//                                                                                (ood: two citation hops)
import type { Corpus, Paper } from "./corpus.ts";

export const FAMILIES = { train: ["author-year", "cites", "cited-by"], ood: ["unseen-combination", "citation-chain"] } as const;
export type Family = (typeof FAMILIES.train)[number] | (typeof FAMILIES.ood)[number];
const ALL: readonly string[] = [...FAMILIES.train, ...FAMILIES.ood];

export interface PaperQuery {
  family: Family;
  /** Author of the start paper. */
  author: string;
  /** Year of the start paper (all families but `cites`). */
  year?: string;
  /** Id of a paper the answer must cite (`cites`, `unseen-combination`). */
  cites?: string;
  /** Authors along the citation chain from the start paper: [B] (cited-by) or [B, C] (citation-chain). */
  hops: string[];
}

export function queryId(q: PaperQuery): string {
  const parts = [q.author, ...(q.year ? [q.year] : []), ...(q.cites ? [q.cites] : []), ...q.hops];
  return `${q.family}/${parts.join("+")}`;
}

export function parseQueryId(id: string): PaperQuery | null {
  const slash = id.indexOf("/");
  const family = id.slice(0, slash);
  if (slash < 0 || !ALL.includes(family)) return null;
  const p = id.slice(slash + 1).split("+");
  switch (family as Family) {
    case "author-year":
      return p.length === 2 ? { family: "author-year", author: p[0], year: p[1], hops: [] } : null;
    case "cites":
      return p.length === 2 ? { family: "cites", author: p[0], cites: p[1], hops: [] } : null;
    case "cited-by":
      return p.length === 3 ? { family: "cited-by", author: p[0], year: p[1], hops: [p[2]] } : null;
    case "unseen-combination":
      return p.length === 3 ? { family: "unseen-combination", author: p[0], year: p[1], cites: p[2], hops: [] } : null;
    case "citation-chain":
      return p.length === 4 ? { family: "citation-chain", author: p[0], year: p[1], hops: [p[2], p[3]] } : null;
  }
}

export function promptWords(q: PaperQuery): string[] {
  const start = ["the", "paper", "by", q.author, ...(q.year ? ["from", q.year] : []), ...(q.cites ? ["that", "cites", q.cites] : [])];
  if (q.hops.length === 0) return ["find", ...start];
  // find the paper by C cited by the paper by B cited by <start>
  const out = ["find"];
  for (let i = q.hops.length - 1; i >= 0; i--) out.push("the", "paper", "by", q.hops[i], "cited", "by");
  return [...out, ...start];
}

/** Papers matching the start constraints (author, year, cited paper). */
export function startCandidates(c: Corpus, q: PaperQuery): Paper[] {
  return c.papers.filter((p) => p.author === q.author && (!q.year || p.year === q.year));
}

export function cites(c: Corpus, p: Paper, id: string): boolean {
  return p.refs.some((r) => c.papers[r].id === id);
}

/** The reference of `p` written by `author`, if any (reference authors are distinct). */
export function refBy(c: Corpus, p: Paper, author: string): Paper | undefined {
  return p.refs.map((r) => c.papers[r]).find((r) => r.author === author);
}

/** The unique answer, or null. */
export function resolve(c: Corpus, q: PaperQuery): Paper | null {
  const starts = startCandidates(c, q);
  const citing = q.cites ? starts.filter((p) => cites(c, p, q.cites!)) : starts;
  if (q.family === "unseen-combination" && starts.length < 2) return null; // the year alone would decide
  if (citing.length !== 1) return null;
  let cur: Paper | undefined = citing[0];
  for (const h of q.hops) {
    cur = refBy(c, cur, h);
    if (!cur) return null;
  }
  return cur;
}

/** Every well-posed query of a family, in a stable order. */
export function enumerate(c: Corpus, family: Family): PaperQuery[] {
  const out: PaperQuery[] = [];
  const pairs = new Map<string, Paper[]>();
  for (const p of c.papers) {
    const k = `${p.author}+${p.year}`;
    pairs.set(k, [...(pairs.get(k) ?? []), p]);
  }
  const uniqueStarts = [...pairs.values()].filter((ps) => ps.length === 1).map((ps) => ps[0]);
  const push = (q: PaperQuery) => {
    if (resolve(c, q)) out.push(q);
  };
  switch (family) {
    case "author-year":
      for (const p of uniqueStarts) push({ family, author: p.author, year: p.year, hops: [] });
      break;
    case "cites":
      for (const a of c.authors) {
        const cited = new Set(c.papers.filter((p) => p.author === a).flatMap((p) => p.refs.map((r) => c.papers[r].id)));
        for (const x of cited) push({ family, author: a, cites: x, hops: [] });
      }
      break;
    case "cited-by":
      for (const p of uniqueStarts) for (const r of p.refs) push({ family, author: p.author, year: p.year, hops: [c.papers[r].author] });
      break;
    case "unseen-combination":
      for (const ps of pairs.values()) {
        if (ps.length < 2) continue;
        const cited = new Set(ps.flatMap((p) => p.refs.map((r) => c.papers[r].id)));
        for (const x of cited) push({ family, author: ps[0].author, year: ps[0].year, cites: x, hops: [] });
      }
      break;
    case "citation-chain":
      for (const p of uniqueStarts) {
        for (const r of p.refs) {
          const q = c.papers[r];
          for (const s of q.refs) push({ family, author: p.author, year: p.year, hops: [q.author, c.papers[s].author] });
        }
      }
      break;
  }
  return out;
}

/** The longest prompt any query can have (the context bound must fit it). */
export const LONGEST_PROMPT = promptWords({ family: "citation-chain", author: "A", year: "Y", hops: ["B", "C"] }).length;
