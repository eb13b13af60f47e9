// What is specific to paper-search. The contract every environment keeps (determinism, disjoint splits,
// the demonstrator, the context bound, reward at the end, malformed actions, config errors) runs in
// test/unit/environment-contract.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../core/rng.ts";
import { createPaperSearch, type PaperSearch } from "../../envs/paper-search/index.ts";

const env = createPaperSearch({}, 3) as PaperSearch;

test("paper-search: the task lists: train and test disjoint in ids and questions; the families by name", () => {
  const train = env.tasks("train");
  const test = env.tasks("test");
  const ood = env.tasks("ood");
  assert.ok(train.length >= 100 && test.length >= 20 && ood.length >= 40, `${train.length} ${test.length} ${ood.length}`);
  const trainIds = new Set(train.map((t) => t.id));
  for (const t of test) assert.ok(!trainIds.has(t.id), t.id);
  const trainPrompts = new Set(train.map((t) => t.prompt.join(" ")));
  for (const t of test) assert.ok(!trainPrompts.has(t.prompt.join(" ")), t.prompt.join(" "));
  assert.deepEqual(env.families, { train: ["author-year", "cites", "cited-by"], ood: ["unseen-combination", "citation-chain"] });
  const rng = new Rng(9);
  const testIds = new Set(test.map((x) => x.id));
  for (let i = 0; i < 400; i++) {
    assert.ok(trainIds.has(env.sampleTask(rng, "train").id));
    assert.ok(testIds.has(env.sampleTask(rng, "test").id));
  }
});

test("paper-search: a search without hits lists no results; submit ends the episode; a step after the end is an error", async () => {
  const task = env.tasks("train")[0];
  const ep = await env.start(task);
  const none = await ep.step(["search", "[", "zzz", "qqq", "]"]);
  assert.deepEqual([none.reward, none.done], [0, false]);
  assert.ok(none.observation.includes("results"));
  const done = await ep.step(["submit", "[", task.answer, "]"]);
  assert.deepEqual([done.reward, done.done, done.success], [1, true, true]);
  const after = await ep.step(["submit", "[", task.answer, "]"]);
  assert.deepEqual([after.reward, after.done], [0, true]);
  assert.ok(after.error);
});

test("paper-search: search shows `id : title ( author , year )` lines, open shows references; wrong submit fails", async () => {
  const task = env.tasks("train", "author-year")[0];
  const ep = await env.start(task);
  const [author, year] = task.id.split("/")[1].split("+");
  const out = await ep.step(["search", "[", author, year, "]"]);
  const obs = out.observation;
  assert.deepEqual(obs.slice(0, 5), ["<obs>", "search", author, year, ":"]);
  assert.deepEqual(obs.slice(5, 7), [task.answer, ":"]);
  assert.deepEqual(obs.slice(10, 15), ["(", author, ",", year, ")"]);
  const opened = await ep.step(["open", "[", task.answer, "]"]);
  assert.deepEqual(opened.observation.slice(1, 5), [task.answer, "by", author, year]);
  assert.ok(opened.observation.includes("cites"));
  const other = env.tasks("train").find((t) => t.answer !== task.answer)!;
  const wrong = await ep.step(["submit", "[", other.answer, "]"]);
  assert.deepEqual([wrong.reward, wrong.done, wrong.success], [0, true, false]);
});

test("paper-search: stateKey identifies the environment state", async () => {
  const task = env.tasks("train", "cites")[0];
  const a = await env.start(task);
  const b = await env.start(task);
  assert.equal(a.stateKey(), b.stateKey());
  const author = task.id.split("/")[1].split("+")[0];
  await a.step(["search", "[", author, "]"]);
  assert.notEqual(a.stateKey(), b.stateKey());
  await b.step(["search", "[", author, "]"]);
  assert.equal(a.stateKey(), b.stateKey());
  const other = env.tasks("train", "cites")[1];
  assert.notEqual((await env.start(other)).stateKey(), (await env.start(task)).stateKey());
});

test("paper-search: a smaller corpus names fewer papers", () => {
  const small = createPaperSearch({ papers: 40, authors: 16 }, 2) as PaperSearch;
  assert.ok(small.vocabulary().includes("p39") && !small.vocabulary().includes("p40"));
});
