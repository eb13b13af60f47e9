// The textworld's fixed word lists. Every generated name is one word, so the vocabulary is closed:
// the lists below plus the template and reasoning words are everything an episode can show or a
// demonstrator can write.

import { parserVocabulary } from "../action-parser.ts";

export const DIRS = ["north", "east", "south", "west"] as const;
export type Dir = (typeof DIRS)[number];

export const OPPOSITE: Record<Dir, Dir> = { north: "south", south: "north", east: "west", west: "east" };
export const DELTA: Record<Dir, [number, number]> = { north: [0, 1], south: [0, -1], east: [1, 0], west: [-1, 0] };

export const ROOM_NAMES = [
  "hall",
  "kitchen",
  "cellar",
  "attic",
  "study",
  "garden",
  "pantry",
  "vault",
  "library",
  "porch",
  "gallery",
  "chapel",
  "bedroom",
  "workshop",
] as const;

export const CONTAINERS = ["chest", "box", "drawer", "cabinet", "crate", "basket", "trunk"] as const;

export const OBJECTS = ["coin", "gem", "apple", "book", "lamp", "cup", "ring", "scroll", "candle", "bottle", "shell", "feather"] as const;

export const KEY = "key";

export const TOOLS = ["go", "take", "open", "unlock", "put"] as const;

/** Template words of observations, contexts, prompts, errors and demonstrator reasoning. */
export const TEMPLATE_WORDS = [
  // goals
  "goal",
  ":",
  "take",
  "the",
  "in",
  "put",
  // room descriptions and memory
  "you",
  "are",
  "exits",
  "see",
  "saw",
  "carry",
  "nothing",
  "none",
  "remember",
  ".",
  ",",
  "(",
  ")",
  "[",
  "]",
  "closed",
  "open",
  "locked",
  "empty",
  // results
  "go",
  "unlock",
  "door",
  "complete",
  // errors
  "error",
  "write",
  "one",
  "command",
  "like",
  "is",
  "no",
  "exit",
  "there",
  "needs",
  "a",
  "direction",
  "item",
  "here",
  "such",
  "thing",
  "can",
  "not",
  "be",
  "taken",
  "container",
  "already",
  "need",
  "do",
  "episode",
  "over",
  // reasoning
  "i",
  "it",
  "reached",
  "via",
  "unknown",
  "explore",
  "and",
  "must",
  "first",
  "back",
  "maybe",
  "try",
  "lies",
] as const;

/** The step counter's words (config `stepCounter`): a count is written digit by digit, `step 1 2 .`. */
export const STEP_WORD = "step";
const DIGITS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"] as const;

/** `n` as the counter shows it: one word per decimal digit (a closed vocabulary for any step limit). */
export function digitWords(n: number): string[] {
  return String(n).split("");
}

/** The closed vocabulary; the counter's words only with `stepCounter` (the vocabulary, and so the model, is otherwise unchanged). */
export function textworldVocabulary(stepCounter = false): string[] {
  const words = new Set<string>([
    ...(stepCounter ? [STEP_WORD, ...DIGITS] : []),
    "<obs>",
    "</obs>",
    ...TEMPLATE_WORDS,
    ...TOOLS,
    ...DIRS,
    ...ROOM_NAMES,
    ...CONTAINERS,
    ...OBJECTS,
    KEY,
    ...parserVocabulary(TOOLS),
  ]);
  return [...words].sort();
}
