// What is specific to multihop-qa. The contract every environment keeps (determinism, disjoint splits,
// the demonstrator, the context bound, reward at the end, malformed actions, config errors) runs in
// test/unit/environment-contract.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../core/rng.ts";
import type { Environment, Split, StepOutcome, Task } from "../../envs/environment.ts";
import { splitOfWorldSeed, VALIDATION_SEED_BASE } from "../../envs/held-out.ts";
import { createMultihopQa, MultihopQa } from "../../envs/multihop-qa/index.ts";
import { evalSets } from "../../learner/evaluation.ts";
import { VARIANTS } from "../../envs/multihop-qa/questions.ts";

const SEED = 7;
const env = new MultihopQa({}, SEED);
const vocab = new Set(env.vocabulary());

interface Played {
  contexts: string[][];
  actions: string[][];
  outcomes: StepOutcome[];
}

/** Plays the demonstrator (or `policy`) for up to `maxSteps` steps. */
async function play(e: Environment, task: Task, rng: Rng, suboptimal: boolean, maxSteps = 5): Promise<Played> {
  const episode = await e.start(task);
  const act = e.demonstrator(task, rng, suboptimal);
  const out: Played = { contexts: [], actions: [], outcomes: [] };
  for (let t = 0; t < maxSteps; t++) {
    out.contexts.push(episode.context());
    const action = await act(episode);
    out.actions.push(action);
    const o = await episode.step(action);
    out.outcomes.push(o);
    if (o.done) break;
  }
  return out;
}

const succeeded = (p: Played) => p.outcomes.at(-1)!.done && p.outcomes.at(-1)!.success;

function assertInVocabulary(words: string[], where: string, v: Set<string> = vocab) {
  for (const w of words) assert.ok(v.has(w), `"${w}" (in ${where}: ${words.join(" ")}) is not in the vocabulary`);
}

test("multihop-qa: the same seed gives the same knowledge base and a sorted vocabulary; another seed another vocabulary", () => {
  const a = new MultihopQa({}, SEED);
  const b = createMultihopQa({}, SEED) as MultihopQa;
  assert.deepEqual(a.kb.passages, b.kb.passages);
  assert.deepEqual(a.vocabulary(), [...a.vocabulary()].sort(), "stable (sorted) order");
  assert.notDeepEqual(new MultihopQa({}, SEED + 1).vocabulary(), a.vocabulary());
});

test("multihop-qa: entity names are unique single capitalised words, and a small vocabulary at the defaults", () => {
  const kb = env.kb;
  const names = [...kb.namesOf("person"), ...kb.namesOf("film"), ...kb.namesOf("company"), ...kb.namesOf("city")];
  assert.equal(names.length, 24 + 12 + 8 + 8);
  assert.equal(new Set(names.map((n) => n.toLowerCase())).size, names.length);
  for (const n of names) assert.match(n, /^[A-Z][a-z]+$/);
  assert.ok(vocab.size < 300, `vocabulary has ${vocab.size} words`);
  const big = new MultihopQa({ people: 60, films: 30, cities: 12, companies: 12 }, 1);
  assert.equal(big.kb.namesOf("person").length, 60);
});

test("multihop-qa: searching an entity's name ranks its own passage first", () => {
  for (const seed of [1, 2, 3]) {
    const e = new MultihopQa({}, seed);
    for (const [doc, name] of e.kb.subjects.entries()) assert.equal(e.kb.search([name], 2)[0], doc, `seed ${seed}: ${name}`);
  }
});

test("multihop-qa: the task lists of train and test are disjoint, sampling draws from them, and every answer is a word", () => {
  assert.deepEqual(env.families, { train: ["bridge"], ood: ["comparison", "compositional"] });
  const train = env.tasks("train");
  const test = env.tasks("test");
  assert.ok(train.length > 0 && test.length > 0);
  const trainIds = new Set(train.map((t) => t.id));
  for (const t of test) assert.ok(!trainIds.has(t.id), t.id);
  const testIds = new Set(test.map((t) => t.id));
  const rng = new Rng(11);
  for (let i = 0; i < 300; i++) {
    const tr = env.sampleTask(rng, "train");
    assert.ok(trainIds.has(tr.id), tr.id);
    const te = env.sampleTask(rng, "test");
    assert.ok(testIds.has(te.id), te.id);
    for (const t of [tr, te, env.sampleTask(rng, "ood")]) assertInVocabulary([t.answer], `${t.id} answer`);
  }
});

test("multihop-qa: validation is a third task list, disjoint from train and test; more validation leaves test as it was", () => {
  const validation = env.tasks("validation");
  const ids = (split: "train" | "validation" | "test", e = env) => new Set(e.tasks(split).map((t) => t.id));
  const [train, test] = [ids("train"), ids("test")];
  assert.ok(validation.length > 0);
  for (const t of validation) {
    assert.equal(t.split, "validation");
    assert.ok(!train.has(t.id) && !test.has(t.id), t.id);
  }
  const all = VARIANTS.filter((v) => v.kind === "chain" && v.family === "bridge").reduce(
    (n, v) => n + (v.kind === "chain" ? env.kb.namesOf(v.anchor).length : 0),
    0,
  );
  assert.equal(train.size + validation.length + test.size, all, "every bridge question is in exactly one split");
  const rng = new Rng(12);
  const vIds = new Set(validation.map((t) => t.id));
  for (let i = 0; i < 100; i++) assert.ok(vIds.has(env.sampleTask(rng, "validation").id));
  // Deterministic in the seed; validationFraction moves questions between train and validation only.
  assert.deepEqual(new MultihopQa({}, SEED).tasks("validation"), validation);
  const wider = new MultihopQa({ validationFraction: 0.3 }, SEED);
  assert.deepEqual(wider.tasks("test"), env.tasks("test"));
  assert.ok(wider.tasks("validation").length > validation.length);
  for (const id of vIds) assert.ok(ids("validation", wider).has(id), `${id} stays in validation`);
  assert.throws(
    () => new MultihopQa({ testFraction: 0.5, validationFraction: 0.5 }, SEED),
    /spec\.environment\.config\.validationFraction: expected testFraction \+ validationFraction below 1/,
  );
});

test("multihop-qa: a knowledge base too small for any validation question serves no validation split, and evaluation leaves it out", () => {
  const small = new MultihopQa({ people: 4, films: 2, cities: 2, companies: 2 }, 3);
  assert.equal(small.tasks("validation").length, 0);
  assert.deepEqual(small.splits, ["train", "test", "ood"]);
  assert.throws(() => small.sampleTask(new Rng(1), "validation"), /the validation split has no bridge questions/);
  assert.deepEqual(
    evalSets(small, 1, 5).map((s) => s.name),
    ["train", "test", "comparison", "compositional"],
  );
  assert.deepEqual(
    evalSets(env, 1, 5).map((s) => s.name),
    ["train", "test", "validation", "comparison", "compositional"],
  );
  assert.deepEqual(new MultihopQa({ people: 4, films: 2, cities: 2, companies: 2, freshFacts: 1 }, 3).splits, ["train", "validation", "test", "ood"]);
});

test("multihop-qa: the optimal demonstrator takes at most 3 steps on a bridge question and solves every test task", async () => {
  const rng = new Rng(21);
  for (let i = 0; i < 300; i++) {
    const p = await play(env, env.sampleTask(rng, "train"), rng, false);
    assert.ok(p.actions.length <= 3, "a bridge question takes at most 3 steps");
  }
  for (const task of env.tasks("test")) assert.ok(succeeded(await play(env, task, rng, false)), task.id);
});

test("multihop-qa: every held-out family is solvable within 5 steps (compositional 3-hop in 4)", async () => {
  const rng = new Rng(22);
  for (const family of env.families.ood) {
    for (let i = 0; i < 100; i++) {
      const task = env.sampleTask(rng, "ood", family);
      const p = await play(env, task, rng, false, 5);
      assert.ok(succeeded(p), `${task.id}: ${p.actions.map((a) => a.join(" ")).join(" | ")}`);
      if (task.id.startsWith("compositional/region/") || task.id.startsWith("compositional/headquarters/")) assert.ok(p.actions.length <= 4, task.id);
      if (family === "comparison") assert.ok(p.actions.length <= 3, task.id);
    }
  }
});

test("multihop-qa: the sub-optimal demonstrator's mistake is plausible: it still succeeds sometimes", async () => {
  const rng = new Rng(23);
  let wins = 0;
  for (let i = 0; i < 200; i++) if (succeeded(await play(env, env.sampleTask(rng, "train"), rng, true, 5))) wins++;
  assert.ok(wins > 0 && wins < 100, `sub-optimal success ${wins / 200}`);
});

test("multihop-qa: reward 1 only for an exact answer", async () => {
  const rng = new Rng(24);
  const task = env.sampleTask(rng, "train");
  const answer = async (words: string[]) => (await env.start(task)).step(["answer", "[", ...words, "]"]);
  assert.deepEqual(await answer([task.answer]), { observation: ["<obs>", "answer", "submitted", "</obs>"], reward: 1, done: true, success: true });
  assert.equal((await answer([task.answer, task.answer])).reward, 0);
  assert.equal((await answer(["the", task.answer])).success, false);
  const wrong = env.vocabulary().find((w) => /^[A-Z]/.test(w) && w !== task.answer)!;
  assert.deepEqual(await answer([wrong]), { observation: ["<obs>", "answer", "submitted", "</obs>"], reward: 0, done: true, success: false });
});

test("multihop-qa: a malformed call's note says what is wrong and clears after a search; an empty search says nothing was found", async () => {
  const task = env.sampleTask(new Rng(5), "train");
  const ep = await env.start(task);
  const bad = await ep.step("i think the answer is obvious".split(" "));
  assert.equal(bad.done, false);
  assert.equal(bad.reward, 0);
  assert.match(bad.error ?? "", /no tool call/);
  assert.deepEqual(bad.observation.slice(0, 3), ["<obs>", "error", ":"]);
  assert.deepEqual(ep.context().slice(-bad.observation.length), bad.observation, "the note is in the next context");
  const none = await ep.step(["search", "[", "because", "]"]);
  assert.deepEqual(none.observation, ["<obs>", "nothing", "was", "found", "</obs>"]);
  assert.equal(none.error, undefined);
  const found = await ep.step(["search", "[", task.prompt.find((w) => /^[A-Z]/.test(w))!, "]"]);
  assert.ok(found.observation.length > 5 && !found.error);
  assert.ok(!ep.context().includes("error") && !ep.context().includes("nothing"), "the note clears after a successful search");
  assert.equal(found.observation.filter((w) => w === "<obs>").length <= env.config.topK, true);
});

test("multihop-qa: the context keeps at most maxPassages passages of evidence under random searches", async () => {
  const configs = [{}, { maxContextWords: 40, maxPassages: 4, topK: 3 }, { maxPassages: 1, topK: 1 }];
  for (const config of configs) {
    const e = new MultihopQa(config, 3);
    const words = e.vocabulary();
    const names = words.filter((w) => /^[A-Z]/.test(w));
    const rng = new Rng(9);
    for (let i = 0; i < 60; i++) {
      const task = e.sampleTask(rng, (["train", "test", "ood"] as Split[])[i % 3]);
      const ep = await e.start(task);
      for (let t = 0; t < 8; t++) {
        const ctx = ep.context();
        assert.ok(ctx.filter((w) => w === "<obs>").length <= e.config.maxPassages + 1);
        // Random searches over names, with occasional junk and malformed calls.
        const r = rng.next();
        const action =
          r < 0.7
            ? ["search", "[", rng.pick(names), ...(rng.next() < 0.3 ? [rng.pick(words)] : []), "]"]
            : r < 0.9
              ? [rng.pick(words), rng.pick(words)]
              : ["answer", "[", rng.pick(names), "]"];
        const o = await ep.step(action);
        if (o.done) break;
      }
    }
  }
});

test("multihop-qa: stateKey identifies the environment state across episodes of a task", async () => {
  const task = env.sampleTask(new Rng(4), "train");
  const anchor = task.prompt.find((w) => /^[A-Z]/.test(w))!;
  const a = await env.start(task);
  const b = await env.start(task);
  assert.equal(a.stateKey(), b.stateKey());
  assert.ok(a.stateKey().startsWith(task.id));
  await a.step(["search", "[", anchor, "]"]);
  assert.notEqual(a.stateKey(), b.stateKey());
  // "need" occurs in no passage, so this query retrieves exactly what the bare name does.
  await b.step(["first", "the", "film", ".", "search", "[", "need", anchor, "]"]);
  assert.equal(a.stateKey(), b.stateKey(), "different wording, same retrieved evidence, same state");
  await b.step(["oops"]);
  assert.notEqual(a.stateKey(), b.stateKey(), "an error note is part of the state");
  const other = env.tasks("train").find((t) => t.id !== task.id)!;
  assert.notEqual((await env.start(other)).stateKey(), (await env.start(task)).stateKey());
});

test("multihop-qa: foreign tasks are rejected", async () => {
  const task = env.sampleTask(new Rng(6), "ood", "compositional");
  await assert.rejects(env.start({ ...task, id: "bridge/birthplace/Nobody" }), /Nobody/);
  await assert.rejects(env.start({ ...task, id: "riddle/x/y" }), /unknown task id/);
});

test("multihop-qa: a valid config is kept", () => {
  assert.equal(new MultihopQa({ topK: 3, maxPassages: 3 }, 1).config.topK, 3);
});

test("multihop-qa freshFacts: each task reads its own knowledge base; validation, test and OOD facts are never training facts (nor each other's)", async () => {
  const fresh = new MultihopQa({ freshFacts: 1 }, SEED);
  const freshVocab = new Set(fresh.vocabulary());
  assert.deepEqual(new MultihopQa({ freshFacts: 1 }, SEED).vocabulary(), fresh.vocabulary(), "one vocabulary per env seed");
  const rng = new Rng(11);
  const seedOf = (t: Task) => Number(/^facts(\d+):/.exec(t.id)?.[1]);
  const answers = new Map<string, Set<string>>(); // question (without its facts) → answers seen
  for (const split of ["train", "validation", "test", "ood"] as Split[]) {
    for (let i = 0; i < 40; i++) {
      const task = fresh.sampleTask(rng, split);
      assert.equal(task.split, split);
      assert.equal(splitOfWorldSeed(seedOf(task)), split, `${task.id}: fact seed of the ${split} split`);
      // train, test and ood keep the residues they always had; validation's seeds lie above all of them.
      if (split === "validation") assert.ok(seedOf(task) >= VALIDATION_SEED_BASE, task.id);
      else assert.ok(seedOf(task) < VALIDATION_SEED_BASE && seedOf(task) % 3 === { train: 0, test: 1, ood: 2 }[split], task.id);
      const question = task.id.replace(/^facts\d+:/, "");
      answers.set(question, (answers.get(question) ?? new Set()).add(task.answer));
      const played = await play(fresh, task, new Rng(i), false);
      assert.ok(succeeded(played), `the optimal demonstrator solves ${task.id}`);
      for (const c of played.contexts) assertInVocabulary(c, task.id, freshVocab);
    }
  }
  // The same question over two fact seeds has, in general, two answers: recall cannot solve it.
  const differing = [...answers.values()].filter((a) => a.size > 1).length;
  assert.ok(differing > 0, "some question has different answers under different facts");
  await assert.rejects(() => fresh.start({ ...env.sampleTask(new Rng(1), "train") }), /has no fact seed, but config.freshFacts is on/);
  await assert.rejects(() => env.start(fresh.sampleTask(new Rng(1), "train")), /needs config.freshFacts/);
});
