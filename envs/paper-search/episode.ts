// One paper-search episode. The context is rebuilt every step from structured state — the goal, the
// evidence gathered (search result lists and opened papers, oldest first) and a note about the last
// call (an error or an empty search):
//   goal : find the paper by Vardo that cites p4 <obs> search Vardo : p17 : robust graph parsing ( Vardo , 2021 ) … </obs>
//   <obs> p17 cites p9 ( Mirel ) </obs> <obs> p20 by Vardo 2022 in Neurix : improves … . cites p4 ( Kasto ) </obs>
// The newest opened paper is shown in full; older ones only by their references. Searching the same
// query or opening the same paper again moves it to the newest place. When the words exceed
// `maxContextWords`, the oldest evidence is dropped first; the goal never is.
import type { Episode, StepOutcome, Task } from "../environment.ts";
import { isParseError, parseToolCall } from "../action-parser.ts";
import type { Corpus, Paper } from "./corpus.ts";
import { END, OBS, TOOLS } from "./words.ts";

export const HEAD = ["goal", ":"];
export const NO_RESULTS = ["no", "results"];
export const SUBMITTED = ["paper", "submitted"];
export const UNKNOWN_ID = ["error", ":", "unknown", "paper", "id"];
export const NEEDS_ONE = ["error", ":", "give", "one", "paper", "id"];
export const OVER = ["error", ":", "the", "episode", "is", "over"];
/** Query words echoed in a search block. */
export const MAX_ECHO = 4;

export type Evidence = { kind: "search"; query: string[]; hits: number[] } | { kind: "open"; paper: number };

export function resultLine(p: Paper): string[] {
  return [p.id, ":", ...p.title, "(", p.author, ",", p.year, ")"];
}

export function refWords(c: Corpus, p: Paper): string[] {
  return p.refs.length === 0 ? ["none"] : p.refs.flatMap((r) => [c.papers[r].id, "(", c.papers[r].author, ")"]);
}

export function openWords(c: Corpus, p: Paper): string[] {
  return [p.id, "by", p.author, p.year, "in", p.venue, ":", ...p.abstract, ".", "cites", ...refWords(c, p)];
}

export function compactOpenWords(c: Corpus, p: Paper): string[] {
  return [p.id, "cites", ...refWords(c, p)];
}

export class PaperEpisode implements Episode {
  readonly evidence: Evidence[] = [];
  /** Every paper shown in a result list so far, in order of first appearance. */
  readonly seen: number[] = [];
  readonly opened = new Set<number>();
  /** Every query searched, in order. */
  readonly queries: string[][] = [];
  note: string[] = [];
  steps = 0;
  done = false;
  success = false;

  constructor(
    readonly task: Task,
    readonly corpus: Corpus,
    private readonly vocab: ReadonlySet<string>,
    private readonly maxContextWords: number,
  ) {}

  context(): string[] {
    const head = [...HEAD, ...this.task.prompt];
    let note = this.note.length > 0 ? [OBS, ...this.note, END] : [];
    const lastOpen = this.evidence.findLastIndex((e) => e.kind === "open");
    const blocks = this.evidence.map((e, i) => [OBS, ...this.blockWords(e, i === lastOpen), END]);
    let total = head.length + note.length + blocks.reduce((s, b) => s + b.length, 0);
    while (blocks.length > 0 && total > this.maxContextWords) total -= blocks.shift()!.length;
    if (total > this.maxContextWords) note = [];
    return [...head, ...blocks.flat(), ...note].slice(0, this.maxContextWords);
  }

  private blockWords(e: Evidence, full: boolean): string[] {
    if (e.kind === "open") {
      const p = this.corpus.papers[e.paper];
      return full ? openWords(this.corpus, p) : compactOpenWords(this.corpus, p);
    }
    return ["search", ...this.echo(e.query), ":", ...e.hits.flatMap((h) => resultLine(this.corpus.papers[h]))];
  }

  /** The query as shown back: known words only, at most MAX_ECHO of them. */
  private echo(query: string[]): string[] {
    return query.filter((w) => this.vocab.has(w)).slice(0, MAX_ECHO);
  }

  stateKey(): string {
    const ev = this.evidence.map((e) => (e.kind === "open" ? `o:${this.corpus.papers[e.paper].id}` : `s:${e.query.join(" ")}`));
    return `${this.task.id}|${ev.join(",")}|${this.note.join(" ")}`;
  }

  async step(action: string[]): Promise<StepOutcome> {
    return this.stepSync(action);
  }

  /** `step` without the promise (task generation replays the demonstrator synchronously). */
  stepSync(action: string[]): StepOutcome {
    if (this.done) return { observation: [OBS, ...OVER, END], reward: 0, done: true, success: this.success, error: "the episode is over" };
    this.steps++;
    const call = parseToolCall(action, TOOLS);
    if (isParseError(call)) return this.fail(["error", ":", ...call.error.split(" ")], call.error);
    if (call.tool === "search") {
      const hits = this.corpus.search(call.args);
      this.queries.push([...call.args]);
      if (hits.length === 0) {
        this.note = [...NO_RESULTS];
        return { observation: [OBS, ...NO_RESULTS, END], reward: 0, done: false, success: false };
      }
      this.note = [];
      const key = call.args.join(" ");
      this.remove((e) => e.kind === "search" && e.query.join(" ") === key);
      const e: Evidence = { kind: "search", query: [...call.args], hits };
      this.evidence.push(e);
      for (const h of hits) if (!this.seen.includes(h)) this.seen.push(h);
      return { observation: [OBS, ...this.blockWords(e, true), END], reward: 0, done: false, success: false };
    }
    if (call.args.length !== 1) return this.fail(NEEDS_ONE, `${call.tool} takes one paper id`);
    const paper = this.corpus.paper(call.args[0]);
    if (!paper) return this.fail(UNKNOWN_ID, `unknown paper id`);
    if (call.tool === "submit") {
      this.done = true;
      this.note = [];
      this.success = paper.id === this.task.answer;
      return { observation: [OBS, ...SUBMITTED, END], reward: this.success ? 1 : 0, done: true, success: this.success };
    }
    this.note = [];
    this.remove((e) => e.kind === "open" && e.paper === paper.index);
    this.evidence.push({ kind: "open", paper: paper.index });
    this.opened.add(paper.index);
    return { observation: [OBS, ...openWords(this.corpus, paper), END], reward: 0, done: false, success: false };
  }

  private remove(match: (e: Evidence) => boolean): void {
    const i = this.evidence.findIndex(match);
    if (i >= 0) this.evidence.splice(i, 1);
  }

  private fail(note: string[], error: string): StepOutcome {
    this.note = [...note];
    return { observation: [OBS, ...note, END], reward: 0, done: false, success: false, error };
  }
}
