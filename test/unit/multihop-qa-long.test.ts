// multihop-qa's long-horizon setting (config.longChains, config.verboseReasoning; issue #13): 6-step
// in-domain questions whose demonstrated steps are 30–40 tokens, fact-disjoint splits under freshFacts,
// and the default setting left as it was. The contract every environment keeps runs in
// test/unit/environment-contract.test.ts for this config too.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../core/rng.ts";
import type { Split, Task } from "../../envs/environment.ts";
import { splitOfWorldSeed } from "../../envs/held-out.ts";
import { FAMILY_ENVIRONMENTS } from "../../bench/algos/settings.ts";
import { MultihopQa } from "../../envs/multihop-qa/index.ts";
import { restate, statedFact } from "../../envs/multihop-qa/reasoning.ts";
import { followChain, parseTaskId, VARIANTS } from "../../envs/multihop-qa/questions.ts";

/** The benchmark's long-horizon setting. */
const LONG = (FAMILY_ENVIRONMENTS["multihop-qa-long"].config ?? {}) as Record<string, number>;

interface Played {
  contexts: string[][];
  actions: string[][];
  success: boolean;
  done: boolean;
}

async function play(env: MultihopQa, task: Task, rng: Rng, suboptimal: boolean, maxSteps = 8): Promise<Played> {
  const episode = await env.start(task);
  const act = env.demonstrator(task, rng, suboptimal);
  const out: Played = { contexts: [], actions: [], success: false, done: false };
  for (let t = 0; t < maxSteps && !out.done; t++) {
    out.contexts.push(episode.context());
    const action = await act(episode);
    out.actions.push(action);
    const o = await episode.step(action);
    out.done = o.done;
    out.success = o.success;
  }
  return out;
}

test("multihop-qa long: every in-domain question takes the optimal demonstrator exactly 6 steps of 32–39 words, and it solves them all", async () => {
  const env = new MultihopQa(LONG, 1);
  assert.deepEqual(env.families, { train: ["long-chain"], ood: ["comparison", "compositional"] });
  const rng = new Rng(3);
  for (const split of ["train", "validation", "test"] as Split[]) {
    for (let i = 0; i < 60; i++) {
      const task = env.sampleTask(rng, split);
      assert.equal(task.family, "long-chain");
      const p = await play(env, task, rng, false);
      assert.ok(p.success, `${task.id}: ${p.actions.map((a) => a.join(" ")).join(" | ")}`);
      assert.equal(p.actions.length, 6, task.id);
      // The word-level tokenizer makes a word one token: every step carries at least 30 action tokens.
      for (const a of p.actions) assert.ok(a.length >= 32 && a.length <= 39, `${a.length} words: ${a.join(" ")}`);
      assert.ok(
        p.actions.reduce((s, a) => s + a.length, 0) >= 200,
        "an episode writes about 200 tokens, over which token-level credit decays (0.95^200 ≈ 4e-5)",
      );
    }
  }
});

test("multihop-qa long: a demonstrated step's reasoning can be copied from its context (the question's anchor, the newest passages)", async () => {
  const env = new MultihopQa(LONG, 2);
  const rng = new Rng(4);
  const names = (words: string[]) => words.filter((w) => /^[A-Z]/.test(w));
  for (let i = 0; i < 40; i++) {
    const p = await play(env, env.sampleTask(rng, "train"), rng, false);
    p.actions.forEach((a, t) => {
      const context = new Set(p.contexts[t]);
      for (const name of names(a)) assert.ok(context.has(name), `step ${t + 1} writes ${name}, which its context does not show: ${a.join(" ")}`);
    });
  }
});

test("multihop-qa long: contexts stay within maxContextWords (and the tiny model's 128 − 48 tokens); sub-optimal plans end within 7 steps, some succeed", async () => {
  const env = new MultihopQa(LONG, 3);
  const rng = new Rng(5);
  let wins = 0;
  let longest = 0;
  const n = 200;
  for (let i = 0; i < n; i++) {
    const p = await play(env, env.sampleTask(rng, "train"), rng, true, 7);
    assert.ok(p.done, "a sub-optimal plan ends with an answer within 7 steps");
    if (p.success) wins++;
    for (const c of p.contexts) longest = Math.max(longest, c.length);
  }
  assert.ok(longest <= LONG.maxContextWords && longest < 128 - 48, `longest context ${longest} words`);
  assert.ok(wins > 0.1 * n && wins < 0.5 * n, `sub-optimal success ${wins / n}`);
});

test("multihop-qa long: no in-domain chain comes back to an entity it visited (it would take fewer steps than hops)", () => {
  const env = new MultihopQa({ longChains: 1, films: 40 }, 4);
  for (const split of ["train", "validation", "test"] as const) {
    const tasks = env.tasks(split);
    assert.ok(tasks.length > 0, split);
    for (const t of tasks) {
      const q = parseTaskId(env.kb, t.id);
      assert.equal(q.variant.family, "long-chain");
      assert.equal(new Set(q.chain).size, 5, t.id);
    }
  }
  // Without the filter some anchors would repeat one: the filter is not vacuous at the default KB size.
  const v = VARIANTS.find((x) => x.family === "long-chain");
  assert.ok(v?.kind === "chain");
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  const repeating = seeds.some((seed) => {
    const kb = new MultihopQa({ longChains: 1 }, seed).kb;
    return kb.namesOf("film").some((f) => new Set(followChain(kb, f, v.path).chain).size < 5);
  });
  assert.ok(repeating, "some default knowledge base has a long chain that repeats an entity");
});

test("multihop-qa long: fresh facts keep validation and test fact seeds apart from train's, and the same seed gives the same episodes", async () => {
  const a = new MultihopQa(LONG, 5);
  const b = new MultihopQa(LONG, 5);
  const ra = new Rng(6);
  const rb = new Rng(6);
  for (let i = 0; i < 120; i++) {
    const split = (["train", "validation", "test"] as const)[i % 3];
    const ta = a.sampleTask(ra, split);
    const tb = b.sampleTask(rb, split);
    assert.deepEqual(ta, tb);
    const seed = Number(/^facts(\d+):/.exec(ta.id)?.[1]);
    assert.equal(splitOfWorldSeed(seed), split, ta.id);
    const pa = await play(a, ta, new Rng(i), i % 2 === 0);
    const pb = await play(b, tb, new Rng(i), i % 2 === 0);
    assert.deepEqual(pa.actions, pb.actions, ta.id);
  }
});

test("multihop-qa long: the defaults are untouched — bridge in-domain, no restatement, the same vocabulary; tasks of the other setting are refused", async () => {
  const plain = new MultihopQa({}, 7);
  assert.deepEqual(new MultihopQa({ longChains: 0, verboseReasoning: 0 }, 7).vocabulary(), plain.vocabulary());
  assert.deepEqual(plain.families.train, ["bridge"]);
  const task = plain.sampleTask(new Rng(1), "train");
  const p = await play(plain, task, new Rng(1), false);
  assert.ok(p.actions.length <= 3 && !p.actions.some((a) => a.includes("asks")), p.actions.map((a) => a.join(" ")).join(" | "));
  // verboseReasoning adds the restatement's one new word; longChains alone adds none.
  const verbose = new MultihopQa({ verboseReasoning: 1 }, 7).vocabulary();
  assert.deepEqual(
    verbose.filter((w) => !plain.vocabulary().includes(w)),
    ["asks"],
  );
  assert.deepEqual(new MultihopQa({ longChains: 1 }, 7).vocabulary(), plain.vocabulary());
  const long = new MultihopQa({ longChains: 1 }, 7);
  await assert.rejects(() => long.start(task), /family bridge, which this config does not serve/);
  await assert.rejects(() => plain.start(long.sampleTask(new Rng(2), "train")), /family long-chain, which this config does not serve/);
});

test("multihop-qa long: restate writes the question as a chain of relations; statedFact takes a step's opening fact", () => {
  const kb = new MultihopQa({ longChains: 1 }, 8).kb;
  const film = kb.namesOf("film")[0];
  const q = parseTaskId(kb, `long-chain/founder-region/${film}`);
  assert.deepEqual(restate(q).join(" "), `the question asks for the region of the birthplace of the founder of the employer of the director of ${film} .`);
  assert.deepEqual(statedFact("the director of Velmora is Orsk . search [ Orsk ]".split(" ")), "the director of Velmora is Orsk .".split(" "));
  assert.deepEqual(statedFact("i need the director of Velmora . search [ Velmora ]".split(" ")), []);
});
