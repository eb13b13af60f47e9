import assert from "node:assert/strict";
import { test } from "node:test";
import { parserMessages, parserVocabulary, parseToolCall } from "../../envs/action-parser.ts";

const TOOLS = ["search", "answer"] as const;
const w = (s: string) => s.split(" ");
const parse = (s: string) => parseToolCall(w(s), TOOLS);

function errorOf(s: string | string[]): string {
  const p = typeof s === "string" ? parse(s) : parseToolCall(s, TOOLS);
  assert.ok("error" in p, `expected an error for "${s}", got ${JSON.stringify(p)}`);
  return p.error;
}

test("parser: reasoning words, then one tool call", () => {
  assert.deepEqual(parse("i need the director of Velmora first . search [ Velmora ]"), { tool: "search", args: ["Velmora"] });
  assert.deepEqual(parse("answer [ Orsk ]"), { tool: "answer", args: ["Orsk"] });
  assert.deepEqual(parse("search [ director of Velmora ]"), { tool: "search", args: ["director", "of", "Velmora"] });
});

test("parser: reasoning may mention tools and brackets, except a tool name directly before [", () => {
  assert.deepEqual(parse("i will search then answer . search [ Velmora ]"), { tool: "search", args: ["Velmora"] });
  assert.deepEqual(parse("a ] stray bracket and note [ x ] . answer [ Orsk ]"), { tool: "answer", args: ["Orsk"] });
});

test("parser: no tool call", () => {
  assert.match(errorOf("i think it is Orsk"), /no tool call/);
  assert.match(errorOf("search Velmora"), /no tool call/);
  assert.match(errorOf([]), /no tool call/);
});

test("parser: two tool calls", () => {
  assert.match(errorOf("search [ Velmora ] answer [ Orsk ]"), /only one tool call/);
  assert.match(errorOf("search [ answer [ Orsk ] ]"), /only one tool call/);
});

test("parser: unclosed bracket", () => {
  assert.match(errorOf("search [ Velmora"), /missing \]/);
  assert.match(errorOf("answer ["), /missing \]/);
});

test("parser: empty argument", () => {
  assert.match(errorOf("search [ ]"), /empty argument/);
  assert.match(errorOf(["answer", "[", " ", "]"]), /empty argument/);
});

test("parser: unknown tool", () => {
  assert.match(errorOf("lookup [ Velmora ]"), /unknown tool , use search or answer/);
  assert.match(errorOf("Search [ Velmora ]"), /unknown tool/, "tool names are case-sensitive");
  assert.match(errorOf("[ Velmora ]"), /unknown tool/);
});

test("parser: nested bracket and words after the call", () => {
  assert.match(errorOf("search [ a [ b ]"), /unexpected \[/);
  assert.match(errorOf("search [ Velmora ] please"), /must end the step/);
});

test("parser: every message uses only words of parserVocabulary", () => {
  const vocab = new Set(parserVocabulary(TOOLS));
  const messages = parserMessages(TOOLS);
  assert.equal(messages.length, 7);
  for (const m of messages) for (const word of m.split(" ")) assert.ok(vocab.has(word), `"${word}" of "${m}"`);
  for (const t of ["[", "]", "search", "answer"]) assert.ok(vocab.has(t));
});
