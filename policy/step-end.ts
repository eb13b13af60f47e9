// Where an agent step ends when the policy writes text in its own tokenizer (a Hugging Face model) rather
// than the built-in vocabulary's <eos-step>: at a stop token (the model's end-of-turn, say) or at the first
// token whose text completes a stop string (the tool-call grammar's closing "</tool_call>" or "]"). The
// step keeps every token it sampled up to and including that one: the learner trains on exactly those
// ids (token in, token out), even when a stop string ends inside a token's text.

export interface StepEndRule {
  /** Token ids that end a step themselves. */
  stopIds: readonly number[];
  /** Strings whose first appearance in the step's text ends it. */
  stopStrings: readonly string[];
  /** The text of some token ids (the tokenizer's decode, special tokens kept). */
  decode: (ids: number[]) => string;
}

/** A predicate over a step's ids so far: has the newest token ended the step? Checked after every token. */
export type EndsStep = (actionIds: readonly number[]) => boolean;

/** Bytes a character takes at most in UTF-8: a stop string of n characters lies within the last 4n + 4 tokens' text. */
const MAX_BYTES_PER_CHAR = 4;

export function stepEnd(rule: StepEndRule): EndsStep {
  const stopIds = new Set(rule.stopIds);
  const strings = rule.stopStrings.filter((s) => s.length > 0);
  if (strings.length !== rule.stopStrings.length) throw new Error("step end: an empty stop string would end every step at once");
  // Every token has at least one byte of text, so the last `window` tokens hold the newest stop string in full
  // (however tokens cut characters) without decoding the whole step after every token.
  const window = MAX_BYTES_PER_CHAR * Math.max(0, ...strings.map((s) => s.length)) + MAX_BYTES_PER_CHAR;
  return (actionIds) => {
    const n = actionIds.length;
    if (n === 0) return false;
    if (stopIds.has(actionIds[n - 1])) return true;
    if (strings.length === 0) return false;
    // The stop string must be completed by the newest token: present now, absent without it.
    const recent = actionIds.slice(Math.max(0, n - window));
    const now = rule.decode(recent);
    const before = rule.decode(recent.slice(0, -1));
    return strings.some((s) => now.includes(s) && !before.includes(s));
  };
}
