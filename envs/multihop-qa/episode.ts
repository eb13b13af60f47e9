// One multihop-qa episode. The context is rebuilt every step from structured state — the question, an
// evidence buffer of at most `maxPassages` passages, and a note about the last call (an error or an
// empty search) — so it stays bounded:
//   question : where was the director of Velmora born ? <obs> Velmora is a film … </obs> <obs> … </obs>
// Evidence order is oldest first. When the buffer overflows, the oldest secondary hit (rank > 1 in its
// search) goes first, then the oldest top hit, so the passages of the entities actually searched for
// stay in view (a comparison keeps both compared entities). If the words still exceed
// `maxContextWords`, the oldest evidence is dropped; the question never is.
import type { Episode, StepOutcome, Task } from "../environment.ts";
import { isParseError, parseToolCall } from "../action-parser.ts";
import type { MultihopQaConfig } from "./config.ts";
import type { KnowledgeBase } from "./knowledge-base.ts";
import type { Question } from "./questions.ts";

export const TOOLS = ["search", "answer"] as const;

const OBS = "<obs>";
const END = "</obs>";
const HEAD = ["question", ":"];
const NOTHING_FOUND = ["nothing", "was", "found"];
const ANSWER_SUBMITTED = ["answer", "submitted"];
const ERROR_PREFIX = ["error", ":"];

/** Every word the episode itself adds around the question and the passages. */
export function episodeWords(): string[] {
  return [OBS, END, ...HEAD, ...NOTHING_FOUND, ...ANSWER_SUBMITTED, ...ERROR_PREFIX];
}

/** Context words taken by the question frame (`question :`) and by the longest possible note. */
export function frameWords(longestError: number): { head: number; note: number } {
  return { head: HEAD.length, note: 2 + Math.max(NOTHING_FOUND.length, ERROR_PREFIX.length + longestError) };
}

interface Evidence {
  doc: number;
  /** Ranked first in the search that last returned it. */
  top: boolean;
}

export class MultihopEpisode implements Episode {
  private evidence: Evidence[] = [];
  private note: string[] = [];
  private steps = 0;
  private finished = false;

  constructor(
    readonly task: Task,
    readonly question: Question,
    private readonly kb: KnowledgeBase,
    private readonly cfg: MultihopQaConfig,
  ) {}

  /** Steps taken so far. */
  get stepCount(): number {
    return this.steps;
  }

  get done(): boolean {
    return this.finished;
  }

  context(): string[] {
    return this.render().words;
  }

  /** Documents whose passages are in the current context, oldest first. */
  visibleDocs(): number[] {
    return this.render().shown.map((e) => e.doc);
  }

  stateKey(): string {
    const shown = this.render().shown.map((e) => this.kb.subjects[e.doc] + (e.top ? "" : "~"));
    return `${this.task.id}|${shown.join(",")}|${this.note.join(" ")}`;
  }

  async step(action: string[]): Promise<StepOutcome> {
    if (this.finished) throw new Error(`multihop-qa: episode ${this.task.id} is already over`);
    this.steps++;
    const call = parseToolCall(action, TOOLS);
    if (isParseError(call)) {
      this.note = [...ERROR_PREFIX, ...call.error.split(" ")];
      return { observation: [OBS, ...this.note, END], reward: 0, done: false, success: false, error: call.error };
    }
    if (call.tool === "answer") {
      this.finished = true;
      this.note = [];
      const success = call.args.join(" ") === this.task.answer;
      return { observation: [OBS, ...ANSWER_SUBMITTED, END], reward: success ? 1 : 0, done: true, success };
    }
    const hits = this.kb.search(call.args, this.cfg.topK);
    if (hits.length === 0) {
      this.note = [...NOTHING_FOUND];
      return { observation: [OBS, ...NOTHING_FOUND, END], reward: 0, done: false, success: false };
    }
    this.note = [];
    for (const [rank, doc] of hits.entries()) this.remember(doc, rank === 0);
    return { observation: hits.flatMap((doc) => [OBS, ...this.kb.passages[doc], END]), reward: 0, done: false, success: false };
  }

  private remember(doc: number, top: boolean): void {
    const old = this.evidence.findIndex((e) => e.doc === doc);
    const wasTop = old >= 0 && this.evidence[old].top;
    if (old >= 0) this.evidence.splice(old, 1);
    this.evidence.push({ doc, top: top || wasTop });
    while (this.evidence.length > this.cfg.maxPassages) {
      const secondary = this.evidence.findIndex((e) => !e.top);
      this.evidence.splice(Math.max(secondary, 0), 1);
    }
  }

  private render(): { words: string[]; shown: Evidence[] } {
    const head = [...HEAD, ...this.task.prompt];
    let note = this.note.length > 0 ? [OBS, ...this.note, END] : [];
    const shown = [...this.evidence];
    const passageWords = (e: Evidence) => this.kb.passages[e.doc].length + 2;
    let total = head.length + note.length + shown.reduce((s, e) => s + passageWords(e), 0);
    while (shown.length > 0 && total > this.cfg.maxContextWords) total -= passageWords(shown.shift()!);
    if (total > this.cfg.maxContextWords) note = []; // unreachable with a validated config
    const words = [...head];
    for (const e of shown) words.push(OBS, ...this.kb.passages[e.doc], END);
    words.push(...note);
    return { words, shown };
  }
}
