// Scripted paper-search agents. The optimal one reacts to what it has seen (result lists, opened
// papers), never to the hidden answer:
//   author-year   search [ Vardo 2021 ] → submit the result by Vardo from 2021
//   cites         search [ Vardo ] → open Vardo's papers in result order → submit the one citing p4
//   cited-by      search [ Vardo 2021 ] → open it → submit its reference by Kasto
//   unseen-combination and citation-chain compose the same moves.
// The sub-optimal one makes one plausible mistake: picking a result that matches only part of the
// constraints, a vague first search, submitting a candidate without checking its references,
// submitting the first checked candidate whatever it cites, or stopping one citation hop short.
import type { Rng } from "../../core/rng.ts";
import type { Episode } from "../environment.ts";
import type { Paper } from "./corpus.ts";
import { PaperEpisode } from "./episode.ts";
import { cites, type PaperQuery, refBy } from "./tasks.ts";

type Mistake = "partial-match" | "vague-search" | "guess" | "unchecked" | "short-chain" | "wrong-ref";

const MISTAKES: Record<PaperQuery["family"], Mistake[]> = {
  "author-year": ["partial-match", "vague-search"],
  cites: ["guess", "unchecked"],
  "cited-by": ["wrong-ref", "short-chain"],
  "unseen-combination": ["guess", "unchecked", "partial-match"],
  "citation-chain": ["short-chain", "wrong-ref"],
};

const tool = (name: string, id: string) => [name, "[", id, "]"];

interface Move {
  words: string[];
  kind: "search" | "open" | "submit";
  paper?: Paper;
  /** The start-candidate check in progress (cites families). */
  checking?: boolean;
}

function startWords(q: PaperQuery): string[] {
  return q.year ? [q.author, q.year] : [q.author];
}

function searchMove(q: PaperQuery, terms: string[]): Move {
  const why =
    q.family === "cites" || terms.length === 1
      ? ["i", "need", "papers", "by", q.author, "."]
      : ["i", "need", "the", "paper", "by", q.author, "from", q.year!, "."];
  return { words: [...why, "search", "[", ...terms, "]"], kind: "search" };
}

function searched(ep: PaperEpisode, terms: string[]): boolean {
  return ep.queries.some((qs) => terms.every((t) => qs.includes(t)));
}

/** Shown papers matching the start constraints, in order of first appearance. */
function shownStarts(ep: PaperEpisode, q: PaperQuery): Paper[] {
  return ep.seen.map((i) => ep.corpus.papers[i]).filter((p) => p.author === q.author && (!q.year || p.year === q.year));
}

export function optimalMove(ep: PaperEpisode, q: PaperQuery): Move {
  const c = ep.corpus;
  const terms = startWords(q);
  const starts = shownStarts(ep, q);
  if (!searched(ep, terms) && starts.length === 0) return searchMove(q, terms);
  if (q.cites) {
    const x = q.cites;
    const found = starts.find((p) => ep.opened.has(p.index) && cites(c, p, x));
    if (found) return { words: [found.id, "cites", x, ".", ...tool("submit", found.id)], kind: "submit", paper: found };
    const next = starts.find((p) => !ep.opened.has(p.index));
    if (!next) return searchMove(q, terms);
    const prev = [...starts].reverse().find((p) => ep.opened.has(p.index));
    const why = prev ? [prev.id, "does", "not", "cite", x, "."] : [next.id, "is", "by", q.author, "."];
    return { words: [...why, "check", "if", next.id, "cites", x, ".", ...tool("open", next.id)], kind: "open", paper: next, checking: true };
  }
  if (starts.length === 0) return searchMove(q, terms);
  let cur = starts[0];
  if (q.hops.length === 0) return { words: [cur.id, "is", "by", q.author, "from", q.year!, ".", ...tool("submit", cur.id)], kind: "submit", paper: cur };
  let why = [cur.id, "is", "by", q.author, "from", q.year!, "."];
  for (const h of q.hops) {
    if (!ep.opened.has(cur.index)) return { words: [...why, "check", "its", "references", ".", ...tool("open", cur.id)], kind: "open", paper: cur };
    const next = refBy(c, cur, h);
    if (!next) return { words: [...why, ...tool("submit", cur.id)], kind: "submit", paper: cur }; // never posed
    why = [next.id, "is", "by", h, "and", "cited", "by", cur.id, "."];
    cur = next;
  }
  return { words: [...why, ...tool("submit", cur.id)], kind: "submit", paper: cur };
}

/** The mistaken move replacing `best`, or null when the mistake does not apply here. */
function mistakenMove(ep: PaperEpisode, q: PaperQuery, best: Move, mistake: Mistake, rng: Rng): Move | null {
  const c = ep.corpus;
  switch (mistake) {
    case "vague-search":
      return best.kind === "search" && q.year ? searchMove(q, [q.author]) : null;
    case "partial-match": {
      if (best.kind !== "submit" && !(best.kind === "open" && q.cites)) return null;
      const shown = ep.seen.map((i) => c.papers[i]);
      const partial = shown.filter((p) => (p.author === q.author) !== (p.year === q.year) && !ep.opened.has(p.index));
      if (partial.length === 0) return null;
      const p = partial[0];
      return { words: [p.id, "is", "by", p.author, "from", p.year, ".", ...tool("submit", p.id)], kind: "submit", paper: p };
    }
    case "guess":
      if (best.kind !== "open" || !best.checking) return null;
      return {
        words: [best.paper!.id, "is", "by", q.author, ".", "so", "it", "cites", q.cites!, ".", ...tool("submit", best.paper!.id)],
        kind: "submit",
        paper: best.paper,
      };
    case "unchecked": {
      if (best.kind !== "submit" && !(best.kind === "open" && best.checking)) return null;
      const checked = shownStarts(ep, q).find((p) => ep.opened.has(p.index));
      if (!checked) return null;
      return { words: [checked.id, "cites", q.cites!, ".", ...tool("submit", checked.id)], kind: "submit", paper: checked };
    }
    case "short-chain": {
      // Submits the paper it is about to open: the start paper (cited-by) or the middle one (chain).
      if (best.kind !== "open" || best.checking || !best.paper) return null;
      if (q.hops.length > 1 && best.paper === shownStarts(ep, q)[0]) return null;
      return { words: [best.paper.id, "is", "the", "paper", ".", ...tool("submit", best.paper.id)], kind: "submit", paper: best.paper };
    }
    case "wrong-ref": {
      if (best.kind !== "submit" && best.kind !== "open") return null;
      if (!best.paper) return null;
      const parent = [...ep.opened].map((i) => c.papers[i]).find((p) => p.refs.includes(best.paper!.index));
      if (!parent) return null;
      const others = parent.refs.filter((r) => r !== best.paper!.index).map((r) => c.papers[r]);
      if (others.length === 0) return { words: [parent.id, "is", "the", "paper", ".", ...tool("submit", parent.id)], kind: "submit", paper: parent };
      const w = rng.pick(others);
      return { words: [w.id, "is", "by", w.author, "and", "cited", "by", parent.id, ".", ...tool("submit", w.id)], kind: "submit", paper: w };
    }
  }
}

export function makeDemonstrator(q: PaperQuery, rng: Rng, suboptimal: boolean): (episode: Episode) => string[] {
  let mistake: Mistake | null = suboptimal ? rng.pick(MISTAKES[q.family]) : null;
  return (episode) => {
    if (!(episode instanceof PaperEpisode)) throw new Error("paper-search demonstrator: the episode was not started by paper-search");
    const best = optimalMove(episode, q);
    if (mistake) {
      const wrong = mistakenMove(episode, q, best, mistake, rng);
      if (wrong) {
        mistake = null;
        return wrong.words;
      }
    }
    return best.words;
  };
}

/** Every word a demonstration can contain besides names, ids and years. */
export const DEMONSTRATOR_WORDS = [
  "i",
  "need",
  "papers",
  "the",
  "paper",
  "by",
  "from",
  ".",
  "cites",
  "cite",
  "does",
  "not",
  "is",
  "check",
  "if",
  "it",
  "its",
  "references",
  "and",
  "cited",
  "so",
  "search",
  "open",
  "submit",
  "[",
  "]",
];
