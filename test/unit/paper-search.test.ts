// What is specific to paper-search. The contract every environment keeps (determinism, disjoint splits,
// the demonstrator, the context bound, reward at the end, malformed actions, config errors) runs in
// test/unit/environment-contract.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../core/rng.ts";
import { environmentConfigProblem } from "../../envs/config-check.ts";
import type { Split, Task } from "../../envs/environment.ts";
import { splitOfWorldSeed, VALIDATION_SEED_BASE } from "../../envs/held-out.ts";
import { parsePaperSearchConfig } from "../../envs/paper-search/config.ts";
import { compactOpenWords, type PaperEpisode } from "../../envs/paper-search/episode.ts";
import { createPaperSearch, PAPER_SEARCH_DEFAULTS, type PaperSearch } from "../../envs/paper-search/index.ts";

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

test("paper-search: validation is a third task list, disjoint from train and test in ids and questions; more validation leaves test as it was", () => {
  const validation = env.tasks("validation");
  assert.ok(validation.length >= 10, `${validation.length} validation tasks`);
  const others = [...env.tasks("train"), ...env.tasks("test")];
  const ids = new Set(others.map((t) => t.id));
  const prompts = new Set(others.map((t) => t.prompt.join(" ")));
  for (const t of validation) {
    assert.equal(t.split, "validation");
    assert.ok(!ids.has(t.id) && !prompts.has(t.prompt.join(" ")), t.id);
  }
  const rng = new Rng(10);
  const vIds = new Set(validation.map((t) => t.id));
  for (let i = 0; i < 100; i++) assert.ok(vIds.has(env.sampleTask(rng, "validation").id));
  assert.deepEqual((createPaperSearch({}, 3) as PaperSearch).tasks("validation"), validation, "deterministic in the seed");
  const wider = createPaperSearch({ validationFraction: 0.3 }, 3) as PaperSearch;
  assert.deepEqual(wider.tasks("test"), env.tasks("test"), "test keeps its tasks");
  const widerIds = new Set(wider.tasks("validation").map((t) => t.id));
  for (const id of vIds) assert.ok(widerIds.has(id), `${id} stays in validation`);
  assert.throws(() => createPaperSearch({ testFraction: 0.6, validationFraction: 0.4 }, 3), /spec\.environment\.config\.validationFraction/);
  // A corpus that poses no validation task of some family serves no validation split (it used to open, and still does).
  const small = createPaperSearch({ papers: 24, authors: 8 }, 2) as PaperSearch;
  assert.deepEqual(small.splits, ["train", "test", "ood"]);
  assert.throws(() => small.sampleTask(new Rng(1), "validation"), /poses no validation task of some family/);
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

// freshCorpus: a corpus per task, from the seed in its id; corpus seeds split by residue (train 0, test 1, ood 2 mod 3).
const fresh = (seed: number) => createPaperSearch({ freshCorpus: 1 }, seed) as PaperSearch;
const corpusSeedOf = (t: Task) => Number(/^corpus(\d+):/.exec(t.id)?.[1]);

/** The answer as a paper of its own corpus: id, title, author, year and what it cites. */
async function answerPaper(e: PaperSearch, t: Task): Promise<string> {
  const ep = (await e.start(t)) as PaperEpisode;
  const p = ep.corpus.paper(t.answer)!;
  return [p.id, ...p.title, p.author, p.year, ...compactOpenWords(ep.corpus, p)].join(" ");
}

test("paper-search freshCorpus: no validation, test or OOD answer is a training answer; recalling training answers solves almost nothing", async () => {
  for (const seed of [1, 2, 3, 4]) {
    const e = fresh(seed);
    const rng = new Rng(40 + seed);
    const trainPapers = new Set<string>();
    const trainSeeds = new Set<number>();
    const recall = new Map<string, Map<string, number>>(); // prompt → training answers and their counts
    for (let i = 0; i < 1000; i++) {
      const t = e.sampleTask(rng, "train");
      assert.equal(corpusSeedOf(t) % 3, 0, t.id);
      trainSeeds.add(corpusSeedOf(t));
      trainPapers.add(await answerPaper(e, t));
      const m = recall.get(t.prompt.join(" ")) ?? new Map<string, number>();
      recall.set(t.prompt.join(" "), m.set(t.answer, (m.get(t.answer) ?? 0) + 1));
    }
    for (const split of ["validation", "test", "ood"] as const) {
      let recalled = 0;
      const n = 200;
      for (let i = 0; i < n; i++) {
        const t = e.sampleTask(rng, split);
        assert.equal(t.split, split);
        assert.equal(splitOfWorldSeed(corpusSeedOf(t)), split, `${t.id}: corpus seed of the ${split} split`);
        if (split === "validation") assert.ok(corpusSeedOf(t) >= VALIDATION_SEED_BASE, t.id);
        else assert.equal(corpusSeedOf(t) % 3, split === "test" ? 1 : 2, `${t.id}: test and ood keep their residues`);
        assert.ok(!trainSeeds.has(corpusSeedOf(t)));
        const paper = await answerPaper(e, t);
        assert.ok(!trainPapers.has(paper), `seed ${seed}: the ${split} answer of ${t.id} (${paper}) is a training answer`);
        const m = recall.get(t.prompt.join(" "));
        if (m && [...m.entries()].sort((a, b) => b[1] - a[1])[0][0] === t.answer) recalled++;
      }
      // About one in the number of papers: an id word is right by chance, never by memory.
      assert.ok(recalled / n <= 0.06, `seed ${seed}: the most frequent training answer to the same goal solves ${recalled}/${n} ${split} tasks`);
    }
  }
  // Without freshCorpus every split shares one corpus: held-out answers are papers training already led to.
  const rng = new Rng(1);
  const trainPapers = new Set(await Promise.all(env.tasks("train").map((t) => answerPaper(env, t))));
  const shared = (await Promise.all(env.tasks("test").map((t) => answerPaper(env, t)))).filter((p) => trainPapers.has(p)).length;
  assert.ok(shared / env.tasks("test").length > 0.5, `${shared} of ${env.tasks("test").length} default test answers are training answers`);
  assert.ok(!/^corpus/.test(env.sampleTask(rng, "test").id), "the default stays one corpus");
});

test("paper-search freshCorpus: a task id alone rebuilds its corpus and episode; the same goal over other corpora has other answers", async () => {
  const a = fresh(7);
  const b = fresh(7);
  assert.deepEqual(a.vocabulary(), createPaperSearch({}, 7).vocabulary(), "one vocabulary per environment seed, either mode");
  const rng = new Rng(3);
  const answers = new Map<string, Set<string>>();
  for (let i = 0; i < 60; i++) {
    const t = a.sampleTask(rng, (["train", "test", "ood"] as const)[i % 3]);
    const copy = JSON.parse(JSON.stringify(t)) as Task;
    const [pa, pb] = [await playOptimal(a, t), await playOptimal(b, copy)];
    assert.deepEqual(pa, pb, t.id);
    const goal = t.id.replace(/^corpus\d+:/, "");
    answers.set(goal, (answers.get(goal) ?? new Set()).add(t.answer));
  }
  for (let i = 0; i < 200; i++) {
    const t = a.sampleTask(rng, "train", "author-year");
    const goal = t.id.replace(/^corpus\d+:/, "");
    answers.set(goal, (answers.get(goal) ?? new Set()).add(t.answer));
  }
  const repeated = [...answers.values()].filter((s) => s.size > 1).length;
  assert.ok(repeated >= 5, `only ${repeated} goals had two answers over two corpora`);
});

/** The optimal demonstrator's episode: every context and outcome. */
async function playOptimal(e: PaperSearch, t: Task): Promise<unknown[]> {
  const ep = await e.start(t);
  const act = e.demonstrator(t, new Rng(1), false);
  const out: unknown[] = [];
  for (let s = 0; s < PAPER_SEARCH_DEFAULTS.stepBudget; s++) {
    out.push(ep.context());
    const o = await ep.step(await act(ep));
    out.push(o);
    if (o.done) break;
  }
  return out;
}

test("paper-search freshCorpus: the optimal demonstrator solves every split, ≥ 200 distinct held-out tasks per set", async () => {
  for (const seed of [1, 2]) {
    const e = fresh(seed);
    const rng = new Rng(seed);
    const sets: [Split, string | undefined][] = [
      ["train", undefined],
      ["validation", undefined],
      ["test", undefined],
      ...e.families.ood.map((f): [Split, string] => ["ood", f]),
    ];
    for (const [split, family] of sets) {
      const ids = new Set<string>();
      let wins = 0;
      const n = 200;
      for (let i = 0; i < n; i++) {
        const t = e.sampleTask(rng, split, family);
        ids.add(t.id);
        const played = await playOptimal(e, t);
        if ((played.at(-1) as { success: boolean }).success) wins++;
      }
      assert.ok(wins / n >= 0.99, `seed ${seed} ${split} ${family ?? ""}: optimal success ${wins}/${n}`);
      assert.equal(ids.size, n, `seed ${seed} ${split} ${family ?? ""}: ${ids.size} distinct tasks in ${n} draws`);
    }
  }
});

test("paper-search freshCorpus: config rules bound the field; the modes do not mix; there is no one task list", async () => {
  for (const bad of [2, -1, 0.5, "1", true, null]) {
    assert.throws(() => parsePaperSearchConfig({ freshCorpus: bad }), /^Error: spec\.environment\.config\.freshCorpus: expected an integer between 0 and 1/);
    assert.deepEqual(
      environmentConfigProblem({ name: "paper-search", config: { freshCorpus: bad } })?.path,
      "spec.environment.config.freshCorpus",
      `steppo validate refuses freshCorpus ${JSON.stringify(bad)}`,
    );
  }
  assert.equal(environmentConfigProblem({ name: "paper-search", config: { freshCorpus: 1 } }), undefined);
  assert.equal(parsePaperSearchConfig({}).freshCorpus, 0, "off by default");
  const e = fresh(3);
  await assert.rejects(() => e.start(env.tasks("train")[0]), /has no corpus seed, but config.freshCorpus is on/);
  await assert.rejects(() => env.start(e.sampleTask(new Rng(1), "train")), /needs config.freshCorpus/);
  const t = e.sampleTask(new Rng(1), "test");
  await assert.rejects(() => e.start({ ...t, answer: t.answer === "p0" ? "p1" : "p0" }), /does not belong to this corpus/);
  assert.throws(() => e.tasks("test"), /corpus of its own/);
});
