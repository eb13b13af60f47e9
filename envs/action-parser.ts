// The action grammar shared by every environment: free reasoning words, then exactly one tool call
// `tool [ arg words ]` that ends the step (brackets are separate words), e.g.
//   i need the director of Velmora first . search [ Velmora ]
// Reasoning may contain anything except a tool name directly followed by `[`. A malformed action is
// never an exception: it yields `{ error }`, a short message the environment shows the agent.

/** The text that closes a tool call, and with it the step: where a Hugging Face model's sampled step ends (policy/step-end.ts). */
export const TOOL_CALL_END = "]";

export type ParsedAction = { tool: string; args: string[] } | { error: string };

/** The messages, as word lists with `{tools}` standing for the tool names joined by "or". */
const MESSAGES = {
  noCall: ["no", "tool", "call", "found", ",", "use", "{tools}"],
  twoCalls: ["only", "one", "tool", "call", "per", "step"],
  unclosed: ["missing", "]", "after", "the", "argument"],
  empty: ["empty", "argument"],
  unknown: ["unknown", "tool", ",", "use", "{tools}"],
  nested: ["unexpected", "[", "in", "the", "argument"],
  trailing: ["the", "tool", "call", "must", "end", "the", "step"],
} as const;

function message(kind: keyof typeof MESSAGES, tools: readonly string[]): string {
  const toolWords = tools.flatMap((t, i) => (i === 0 ? [t] : ["or", t]));
  return MESSAGES[kind].flatMap((w) => (w === "{tools}" ? toolWords : [w])).join(" ");
}

/** Every error message the parser can return for this tool set. */
export function parserMessages(tools: readonly string[]): string[] {
  return (Object.keys(MESSAGES) as (keyof typeof MESSAGES)[]).map((kind) => message(kind, tools));
}

/** Every word a parser error message (or a well-formed call's syntax) can contain; environments add these to their vocabulary. */
export function parserVocabulary(tools: readonly string[]): string[] {
  const words = new Set<string>(["[", "]", ...tools]);
  for (const m of parserMessages(tools)) for (const w of m.split(" ")) words.add(w);
  return [...words].sort();
}

export function isParseError(p: ParsedAction): p is { error: string } {
  return "error" in p;
}

export function parseToolCall(words: string[], tools: readonly string[]): ParsedAction {
  const toolSet = new Set(tools);
  const calls: number[] = [];
  for (let i = 0; i + 1 < words.length; i++) if (toolSet.has(words[i]) && words[i + 1] === "[") calls.push(i);
  if (calls.length > 1) return { error: message("twoCalls", tools) };
  if (calls.length === 0) {
    // A bracket without a known tool in front of it is a misspelt or invented tool.
    return { error: message(words.includes("[") ? "unknown" : "noCall", tools) };
  }
  const start = calls[0];
  const args: string[] = [];
  for (let j = start + 2; j < words.length; j++) {
    const w = words[j];
    if (w === "]") {
      if (args.length === 0) return { error: message("empty", tools) };
      if (j !== words.length - 1) return { error: message("trailing", tools) };
      return { tool: words[start], args };
    }
    if (w === "[") return { error: message("nested", tools) };
    const arg = w.trim();
    if (arg) args.push(arg);
  }
  return { error: message("unclosed", tools) };
}
