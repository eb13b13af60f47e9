import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../common/rng.ts";
import { SPECIALS } from "../../learner/tokenizer.ts";
import { parseToolCall } from "../../workers/action-parser.ts";
import type { Environment, Split, Task } from "../../workers/environment.ts";
import { createPaperSearch, PAPER_SEARCH_DEFAULTS, type PaperSearch } from "../../workers/envs/paper-search/index.ts";

const TOOLS = ["search", "open", "submit"];
const BUDGET = PAPER_SEARCH_DEFAULTS.stepBudget;

interface Rollout {
  success: boolean;
  steps: number;
  words: string[][];
  rewards: number[];
  dones: boolean[];
}

/** Plays the demonstrator for up to `budget` steps, collecting every context, action and observation. */
async function play(env: Environment, task: Task, rng: Rng, suboptimal: boolean, budget = BUDGET): Promise<Rollout> {
  const ep = await env.start(task);
  const act = env.demonstrator(task, rng, suboptimal);
  const r: Rollout = { success: false, steps: 0, words: [], rewards: [], dones: [] };
  for (let t = 0; t < budget; t++) {
    const ctx = ep.context();
    const action = await act(ep);
    const out = await ep.step(action);
    r.words.push(ctx, action, out.observation);
    r.rewards.push(out.reward);
    r.dones.push(out.done);
    r.steps++;
    if (out.done) {
      r.success = out.success;
      break;
    }
  }
  r.words.push(ep.context());
  return r;
}

const env = createPaperSearch({}, 3) as PaperSearch;

test("paper-search: same config and seed give the same corpus, tasks and episodes; another seed differs", async () => {
  const a = createPaperSearch({}, 11);
  const b = createPaperSearch({}, 11);
  assert.deepEqual(a.vocabulary(), b.vocabulary());
  const ra = new Rng(5);
  const rb = new Rng(5);
  for (let i = 0; i < 20; i++) {
    const split: Split = (["train", "test", "ood"] as const)[i % 3];
    const ta = a.sampleTask(ra, split);
    const tb = b.sampleTask(rb, split);
    assert.deepEqual(ta, tb);
    const pa = await play(a, ta, ra, i % 2 === 0);
    const pb = await play(b, tb, rb, i % 2 === 0);
    assert.deepEqual(pa.words, pb.words);
  }
  const c = createPaperSearch({}, 12) as PaperSearch;
  assert.notDeepEqual(
    c.tasks("train").map((t) => t.id),
    (a as PaperSearch).tasks("train").map((t) => t.id),
  );
});

test("paper-search: train and test are disjoint task sets of the in-domain families; ood holds only held-out families", () => {
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
  const seen: Record<Split, Set<string>> = { train: new Set(), test: new Set(), ood: new Set() };
  for (let i = 0; i < 400; i++) {
    for (const split of ["train", "test", "ood"] as const) {
      const t = env.sampleTask(rng, split);
      assert.equal(t.split, split);
      seen[split].add(t.family);
      if (split === "ood") assert.ok(env.families.ood.includes(t.family));
      else {
        assert.ok(env.families.train.includes(t.family));
        assert.ok((split === "train" ? trainIds : new Set(test.map((x) => x.id))).has(t.id));
      }
    }
  }
  assert.deepEqual([...seen.train].sort(), [...env.families.train].sort());
  assert.deepEqual([...seen.ood].sort(), [...env.families.ood].sort());
  assert.throws(() => env.sampleTask(rng, "train", "citation-chain"), /not in the train split/);
  assert.throws(() => env.sampleTask(rng, "ood", "cites"), /not in the ood split/);
});

test("paper-search: the optimal demonstrator solves train tasks and each ood family within the step budget; sub-optimal clearly worse", async () => {
  const rng = new Rng(21);
  let opt = 0;
  let sub = 0;
  const n = 240;
  for (let i = 0; i < n; i++) {
    const task = env.sampleTask(rng, "train");
    if ((await play(env, task, rng, false)).success) opt++;
    if ((await play(env, task, rng, true)).success) sub++;
  }
  assert.ok(opt / n >= 0.99, `optimal train success ${opt / n}`);
  assert.ok(sub / n <= opt / n - 0.3, `sub-optimal ${sub / n} vs optimal ${opt / n}`);
  for (const family of env.families.ood) {
    let ok = 0;
    for (let i = 0; i < 100; i++) if ((await play(env, env.sampleTask(rng, "ood", family), rng, false)).success) ok++;
    assert.ok(ok / 100 >= 0.95, `${family}: ${ok / 100}`);
  }
  for (const t of env.tasks("test")) assert.ok((await play(env, t, rng, false)).success, t.id);
});

test("paper-search: contexts stay within maxContextWords and keep the goal; every word is in the vocabulary", async () => {
  for (const cfg of [{}, { maxContextWords: 74 }]) {
    const e = createPaperSearch(cfg, 4);
    const max = (cfg as { maxContextWords?: number }).maxContextWords ?? 96;
    const vocab = new Set([...e.vocabulary(), ...SPECIALS]);
    const rng = new Rng(2);
    for (let i = 0; i < 150; i++) {
      const split = (["train", "test", "ood"] as const)[i % 3];
      const task = e.sampleTask(rng, split);
      const r = await play(e, task, rng, i % 4 === 0);
      for (let j = 0; j < r.words.length; j++) {
        for (const w of r.words[j]) assert.ok(vocab.has(w), `"${w}" is not in the vocabulary (${task.id})`);
      }
      for (let j = 0; j < r.words.length; j += 3) {
        const ctx = r.words[j];
        assert.ok(ctx.length <= max, `context of ${ctx.length} words > ${max}`);
        assert.deepEqual(ctx.slice(0, 2 + task.prompt.length), ["goal", ":", ...task.prompt]);
      }
      for (let j = 1; j < r.words.length; j += 3) {
        const action = r.words[j];
        assert.ok(action.length >= 6 && action.length <= 20, `action of ${action.length} words: ${action.join(" ")}`);
        assert.ok(!("error" in parseToolCall(action, TOOLS)), action.join(" "));
      }
    }
  }
});

test("paper-search: reward arrives only on the final step", async () => {
  const rng = new Rng(8);
  let rewarded = 0;
  for (let i = 0; i < 120; i++) {
    const r = await play(env, env.sampleTask(rng, i % 2 ? "train" : "ood"), rng, i % 3 === 0);
    r.rewards.forEach((x, t) => {
      if (t < r.rewards.length - 1 || !r.dones[t]) assert.equal(x, 0);
    });
    if (r.dones[r.dones.length - 1]) assert.equal(r.rewards[r.rewards.length - 1], r.success ? 1 : 0);
    if (r.success) rewarded++;
  }
  assert.ok(rewarded > 0);
});

test("paper-search: malformed actions give an error observation, reward 0, not done, never a throw", async () => {
  const task = env.tasks("train")[0];
  const ep = await env.start(task);
  const vocab = new Set([...env.vocabulary(), ...SPECIALS]);
  const bad = [
    [],
    ["hello", "there"],
    ["open", "[", "p9999", "]"],
    ["submit", "[", "nonsense", "]"],
    ["open", "[", "p1", "p2", "]"],
    ["search", "[", "a", "]", "search", "[", "b", "]"],
    ["frobnicate", "[", "x", "]"],
    ["search", "[", "x"],
    ["search", "[", "]"],
  ];
  for (const action of bad) {
    const out = await ep.step(action);
    assert.equal(out.reward, 0);
    assert.equal(out.done, false);
    assert.ok(out.error, `no error for ${action.join(" ")}`);
    assert.ok(out.observation.includes("error"), out.observation.join(" "));
    for (const w of out.observation) assert.ok(vocab.has(w), w);
    assert.ok(ep.context().includes("error"));
  }
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

test("paper-search: config errors name the field", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ paperz: 10 }, /spec\.environment\.config\.paperz: unknown key/],
    [{ papers: "many" }, /spec\.environment\.config\.papers: expected an integer/],
    [{ topK: 0 }, /spec\.environment\.config\.topK/],
    [{ topK: 2 }, /spec\.environment\.config\.topK: expected at least maxPapersPerAuthor/],
    [{ testFraction: 1 }, /spec\.environment\.config\.testFraction/],
    [{ authors: 5 }, /spec\.environment\.config\.authors/],
    [{ maxContextWords: 70 }, /spec\.environment\.config\.maxContextWords/],
  ];
  for (const [cfg, re] of cases) assert.throws(() => createPaperSearch(cfg, 1), re);
  const small = createPaperSearch({ papers: 40, authors: 16 }, 2) as PaperSearch;
  assert.ok(small.vocabulary().includes("p39") && !small.vocabulary().includes("p40"));
});
