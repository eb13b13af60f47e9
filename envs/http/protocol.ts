// The JSON shapes of the external-environment protocol (PROTOCOL.md beside this file) and their
// validation. Pure: a reply that does not have its shape throws a ReplyShapeError naming the field, which
// the client turns into an error observation (/step) or a clear failure (/info, /reset, /demonstrate).
import type { Split } from "../environment.ts";

/** GET /info */
export interface InfoReply {
  name: string;
  /** Every word the server can show or accept; the tokenizer's vocabulary besides specials. */
  vocabulary: string[];
  families: { train: string[]; ood: string[] };
  /** The server answers POST /demonstrate (behaviour-cloning warm-up). */
  demonstrations: boolean;
  /** The server serves the validation split at /reset (servers written before it existed do not). */
  validation: boolean;
}

/** POST /reset body: a task is (split, family, seed); the same triple must give the same task. */
export interface ResetRequest {
  split: Split;
  family: string;
  seed: number;
}

export interface ResetReply {
  episodeId: string;
  /** The goal, words separated by spaces; shown at the head of every context. */
  prompt: string;
  /** What the agent sees before its first step (may be empty). */
  observation: string;
  /** Optional: names the environment state (GiGPO anchor states); default: the observations so far. */
  state?: string;
}

/** POST /step body. */
export interface StepRequest {
  episodeId: string;
  /** The policy's words for this step (reasoning and one tool call), separated by spaces. */
  action: string;
}

export interface StepReply {
  observation: string;
  reward: number;
  done: boolean;
  success: boolean;
  /** Set by the server when the action was malformed or the tool failed (the observation explains it). */
  error?: string;
  state?: string;
}

/** POST /demonstrate body: the scripted next action for the episode's current state. */
export interface DemonstrateRequest {
  episodeId: string;
  suboptimal: boolean;
  /** Lets the server make its sub-optimal choices reproducibly. */
  seed: number;
}

export interface DemonstrateReply {
  action: string;
}

export class ReplyShapeError extends Error {}

type Json = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function object(v: unknown, what: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ReplyShapeError(`${what}: expected a JSON object, got ${describe(v)}`);
  return v as Json;
}

function string(o: Json, key: string, opts: { nonEmpty?: boolean } = {}): string {
  const v = o[key];
  if (typeof v !== "string" || (opts.nonEmpty && v.trim() === "")) {
    throw new ReplyShapeError(`${key}: expected ${opts.nonEmpty ? "a non-empty string" : "a string"}, got ${describe(v)}`);
  }
  return v;
}

function optionalString(o: Json, key: string): string | undefined {
  return o[key] === undefined ? undefined : string(o, key);
}

function boolean(o: Json, key: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw new ReplyShapeError(`${key}: expected true or false, got ${describe(v)}`);
  return v;
}

const WORD = /^\S+$/;

function wordList(v: unknown, field: string, opts: { nonEmpty: boolean }): string[] {
  if (!Array.isArray(v)) throw new ReplyShapeError(`${field}: expected an array of words, got ${describe(v)}`);
  if (opts.nonEmpty && v.length === 0) throw new ReplyShapeError(`${field}: expected at least one entry`);
  v.forEach((w, i) => {
    if (typeof w !== "string" || !WORD.test(w)) throw new ReplyShapeError(`${field}[${i}]: expected a word (a string without spaces), got ${describe(w)}`);
  });
  return v as string[];
}

/** Text as the agent's words: the protocol separates words by whitespace. */
export function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== "");
}

export function parseInfoReply(v: unknown): InfoReply {
  const o = object(v, "reply");
  const families = object(o.families, "families");
  const train = wordList(families.train, "families.train", { nonEmpty: true });
  const ood = wordList(families.ood ?? [], "families.ood", { nonEmpty: false });
  const clash = ood.find((f) => train.includes(f));
  if (clash) throw new ReplyShapeError(`families: "${clash}" is both in train and in ood`);
  for (const key of ["demonstrations", "validation"]) {
    if (o[key] !== undefined && typeof o[key] !== "boolean") throw new ReplyShapeError(`${key}: expected true or false, got ${describe(o[key])}`);
  }
  return {
    name: string(o, "name", { nonEmpty: true }),
    vocabulary: wordList(o.vocabulary, "vocabulary", { nonEmpty: true }),
    families: { train, ood },
    demonstrations: o.demonstrations === true,
    validation: o.validation === true,
  };
}

export function parseResetReply(v: unknown): ResetReply {
  const o = object(v, "reply");
  return {
    episodeId: string(o, "episodeId", { nonEmpty: true }),
    prompt: string(o, "prompt"),
    observation: o.observation === undefined ? "" : string(o, "observation"),
    state: optionalString(o, "state"),
  };
}

export function parseStepReply(v: unknown): StepReply {
  const o = object(v, "reply");
  const reward = o.reward;
  if (typeof reward !== "number" || !Number.isFinite(reward)) throw new ReplyShapeError(`reward: expected a finite number, got ${describe(reward)}`);
  const done = boolean(o, "done");
  const success = o.success === undefined ? false : boolean(o, "success");
  if (success && !done) throw new ReplyShapeError("success: true needs done: true");
  return { observation: string(o, "observation"), reward, done, success, error: optionalString(o, "error"), state: optionalString(o, "state") };
}

export function parseDemonstrateReply(v: unknown): DemonstrateReply {
  const o = object(v, "reply");
  return { action: string(o, "action", { nonEmpty: true }) };
}
