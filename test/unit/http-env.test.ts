// The pure parts of the http environment: reply validation, config validation, word splitting, the
// context an episode builds. The network parts are in test/integration/http-env.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EnvClient } from "../../envs/http/client.ts";
import { parseHttpEnvConfig } from "../../envs/http/config.ts";
import { HttpEpisode } from "../../envs/http/episode.ts";
import { parseDemonstrateReply, parseInfoReply, parseResetReply, parseStepReply, ReplyShapeError, words } from "../../envs/http/protocol.ts";
import { createEnvironment, openEnvironment } from "../../envs/registry.ts";

const INFO = { name: "calc", vocabulary: ["what", "is", "?"], families: { train: ["add"], ood: ["chain"] }, demonstrations: true, validation: true };

function rejects(parse: (v: unknown) => unknown, value: unknown, message: RegExp): void {
  assert.throws(
    () => parse(value),
    (err: unknown) => err instanceof ReplyShapeError && message.test(err.message),
    `${JSON.stringify(value)} should be refused with ${message}`,
  );
}

test("http protocol: /info replies are read, with defaults for the optional fields", () => {
  assert.deepEqual(parseInfoReply(INFO), INFO);
  assert.deepEqual(parseInfoReply({ name: "x", vocabulary: ["a"], families: { train: ["f"] }, extra: 1 }), {
    name: "x",
    vocabulary: ["a"],
    families: { train: ["f"], ood: [] },
    demonstrations: false,
    validation: false,
  });
});

test("http protocol: malformed /info replies name the field", () => {
  rejects(parseInfoReply, [], /^reply: expected a JSON object, got \[\]/);
  rejects(parseInfoReply, { ...INFO, name: "" }, /^name: expected a non-empty string/);
  rejects(parseInfoReply, { ...INFO, vocabulary: "what is" }, /^vocabulary: expected an array of words/);
  rejects(parseInfoReply, { ...INFO, vocabulary: [] }, /^vocabulary: expected at least one entry/);
  rejects(parseInfoReply, { ...INFO, vocabulary: ["what", "is it"] }, /^vocabulary\[1\]: expected a word \(a string without spaces\), got "is it"/);
  rejects(parseInfoReply, { ...INFO, vocabulary: ["what", 7] }, /^vocabulary\[1\]: expected a word/);
  rejects(parseInfoReply, { ...INFO, families: undefined }, /^families: expected a JSON object, got nothing/);
  rejects(parseInfoReply, { ...INFO, families: { train: [] } }, /^families\.train: expected at least one entry/);
  rejects(parseInfoReply, { ...INFO, families: { train: ["a"], ood: ["a"] } }, /^families: "a" is both in train and in ood/);
  rejects(parseInfoReply, { ...INFO, demonstrations: "yes" }, /^demonstrations: expected true or false, got "yes"/);
  rejects(parseInfoReply, { ...INFO, validation: 1 }, /^validation: expected true or false, got 1/);
});

test("http protocol: /reset, /step and /demonstrate replies are validated field by field", () => {
  assert.deepEqual(parseResetReply({ episodeId: "e1", prompt: "what is 1 ?" }), { episodeId: "e1", prompt: "what is 1 ?", observation: "", state: undefined });
  rejects(parseResetReply, { prompt: "p" }, /^episodeId: expected a non-empty string, got nothing/);
  rejects(parseResetReply, { episodeId: "e1", prompt: 3 }, /^prompt: expected a string, got 3/);
  rejects(parseResetReply, { episodeId: "e1", prompt: "p", observation: null }, /^observation: expected a string, got null/);

  assert.deepEqual(parseStepReply({ observation: "ok", reward: 1, done: true, success: true, error: "e", state: "s" }), {
    observation: "ok",
    reward: 1,
    done: true,
    success: true,
    error: "e",
    state: "s",
  });
  assert.equal(parseStepReply({ observation: "", reward: 0, done: false }).success, false, "success defaults to false");
  rejects(parseStepReply, "ok", /^reply: expected a JSON object, got "ok"/);
  rejects(parseStepReply, { observation: "o", reward: "1", done: false }, /^reward: expected a finite number, got "1"/);
  rejects(parseStepReply, { observation: "o", reward: Number.NaN, done: false }, /^reward: expected a finite number/);
  rejects(parseStepReply, { observation: "o", reward: 0 }, /^done: expected true or false, got nothing/);
  rejects(parseStepReply, { observation: 5, reward: 0, done: false }, /^observation: expected a string, got 5/);
  rejects(parseStepReply, { observation: "o", reward: 1, done: false, success: true }, /^success: true needs done: true/);
  rejects(parseStepReply, { observation: "o", reward: 0, done: false, error: { why: 1 } }, /^error: expected a string/);

  assert.deepEqual(parseDemonstrateReply({ action: "calc [ 1 + 2 ]" }), { action: "calc [ 1 + 2 ]" });
  rejects(parseDemonstrateReply, { action: "  " }, /^action: expected a non-empty string/);
});

test("http protocol: text is split into words at any whitespace", () => {
  assert.deepEqual(words("  calc [ 1 +\t2 ]\n"), ["calc", "[", "1", "+", "2", "]"]);
  assert.deepEqual(words(""), []);
});

test("http config: defaults, and every error names the field", () => {
  assert.deepEqual(parseHttpEnvConfig({ url: "http://127.0.0.1:8765" }), {
    url: "http://127.0.0.1:8765",
    timeoutMs: 10000,
    retries: 2,
    maxReplyBytes: 4 * 1024 * 1024,
    headers: {},
    headersFrom: [],
    maxContextWords: 96,
  });
  const full = parseHttpEnvConfig({
    url: "https://envs.example/calc/",
    timeoutMs: 50,
    retries: 0,
    maxReplyBytes: 65536,
    headers: { "X-Tenant": "t" },
    headersFrom: [{ name: "Authorization", secretKeyRef: { name: "env-token", key: "token" } }],
    maxContextWords: 40,
  });
  assert.deepEqual(full.headers, { "X-Tenant": "t" });
  assert.deepEqual(full.headersFrom, [{ name: "Authorization", secretKeyRef: { name: "env-token", key: "token" } }]);
  const cases: [Record<string, unknown> | undefined, RegExp][] = [
    [undefined, /spec\.environment\.config\.url: required: the base URL of the environment server/],
    [{}, /spec\.environment\.config\.url: required/],
    [{ url: "localhost:8765" }, /spec\.environment\.config\.url: expected an absolute http:\/\/ or https:\/\/ URL, got "localhost:8765"/],
    [{ url: "ftp://host/" }, /spec\.environment\.config\.url: expected an absolute http:\/\/ or https:\/\/ URL/],
    [{ url: 8765 }, /spec\.environment\.config\.url: expected an absolute .* URL, got 8765/],
    [{ url: "http://h/?x=1" }, /spec\.environment\.config\.url: the URL must have no query or fragment/],
    [{ url: "http://h", timeoutMs: 0 }, /spec\.environment\.config\.timeoutMs: expected an integer between 1 and 600000, got 0/],
    [{ url: "http://h", timeoutMs: "5000" }, /spec\.environment\.config\.timeoutMs: expected an integer/],
    [{ url: "http://h", retries: 11 }, /spec\.environment\.config\.retries: expected an integer between 0 and 10/],
    [{ url: "http://h", headers: ["a"] }, /spec\.environment\.config\.headers: expected a map of header names to strings, got an array/],
    [{ url: "http://h", headers: { "bad name": "x" } }, /spec\.environment\.config\.headers: "bad name" is not a valid HTTP header name/],
    [{ url: "http://h", headers: { "X-Tenant": 5 } }, /spec\.environment\.config\.headers\.X-Tenant: expected a single-line string, got 5/],
    [{ url: "http://h", headers: { "X-Tenant": "a\r\nb" } }, /spec\.environment\.config\.headers\.X-Tenant: expected a single-line string/],
    [
      { url: "http://h", urll: "x" },
      /spec\.environment\.config\.urll: unknown key \(expected one of url, timeoutMs, retries, maxReplyBytes, headers, headersFrom, maxContextWords\)/,
    ],
  ];
  for (const [raw, re] of cases) assert.throws(() => parseHttpEnvConfig(raw), re, JSON.stringify(raw));
});

test("registry: http is opened asynchronously; its config is checked before any request", async () => {
  assert.throws(
    () => createEnvironment({ name: "http", config: { url: "http://127.0.0.1:1" } } as never, 1),
    /"http" is a remote environment: open it with openEnvironment/,
  );
  await assert.rejects(openEnvironment({ name: "http", config: { timeoutMs: 5 } } as never, 1), /spec\.environment\.config\.url: required/);
  const local = await openEnvironment({ name: "textworld" } as never, 1);
  assert.equal(local.name, "textworld", "in-process environments open as before");
});

test("http episode: the context is the prompt then the newest observations that fit; the prompt is never dropped", () => {
  const client = new EnvClient({ url: "http://127.0.0.1:1", timeoutMs: 1, headers: {}, maxReplyBytes: 1024, retries: 0, retryDelayMs: 0 });
  const task = { id: "train/add/1", family: "add", split: "train" as const, prompt: [], answer: "" };
  const ep = new HttpEpisode(task, "e1", { prompt: "what is 1 plus 2 ?", observation: "tools : calc" }, client, 14);
  assert.deepEqual(ep.context(), ["what", "is", "1", "plus", "2", "?", "<obs>", "tools", ":", "calc", "</obs>"]);
  const quiet = new HttpEpisode(task, "e2", { prompt: "what is 1 plus 2 ?", observation: " " }, client, 14);
  assert.deepEqual(quiet.context(), ["what", "is", "1", "plus", "2", "?"], "an empty observation adds nothing");
  const cramped = new HttpEpisode(task, "e3", { prompt: "what is 1 plus 2 ?", observation: "a b c d e f g h" }, client, 10);
  assert.deepEqual(cramped.context(), ["what", "is", "1", "plus", "2", "?", "f", "g", "h", "</obs>"], "the newest observation keeps its last words");
  const long = new HttpEpisode(task, "e4", { prompt: "a b c d e f g h i j k l", observation: "x" }, client, 8);
  assert.deepEqual(long.context(), ["a", "b", "c", "d", "e", "f", "g", "h"]);
  assert.notEqual(ep.stateKey(), quiet.stateKey(), "without a server state, the observations key the state");
  const named = new HttpEpisode(task, "e5", { prompt: "p", observation: "o", state: "s0" }, client, 14);
  assert.equal(named.stateKey(), "train/add/1|s0");
});
