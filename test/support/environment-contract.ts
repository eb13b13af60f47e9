// The contract every environment keeps, as node:test tests against the Environment interface
// (envs/environment.ts) alone: the in-process environments (test/unit/environment-contract.test.ts)
// and the http one against its reference server (test/integration/http-env-contract.test.ts) run the same
// checks. Per-environment test files keep only what is specific to that environment.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../core/rng.ts";
import { parseToolCall } from "../../envs/action-parser.ts";
import { type Environment, type Episode, SPLITS, type Split, type StepOutcome, type Task } from "../../envs/environment.ts";

export type MakeEnv = (config: Record<string, unknown>, seed: number) => Environment | Promise<Environment>;

export interface EnvironmentContractOptions {
  /** Steps an episode may take; the optimal demonstrator finishes within them. */
  stepBudget: number;
  /** The context bound at the default config. */
  maxContextWords: number;
  /** Further configs whose `maxContextWords` (or the default) bounds every context, e.g. a tight one. */
  boundedConfigs?: Record<string, unknown>[];
  /** The words every context of an episode begins with: the goal, given the task and the first context. */
  goal: (task: Task, firstContext: string[]) => string[];
  /** The tools a demonstrated action calls (each action is one well-formed call of one of them). */
  tools: string[];
  /** Inclusive bounds on a demonstrated action's length in words. */
  actionWords: [number, number];
  /** Least success rate of the optimal demonstrator on train, validation, test and each held-out family (default 0.95 each; validation: test's). */
  minSuccess?: Partial<Record<Split, number>>;
  /** The sub-optimal demonstrator, too, always ends its episode within the step budget. */
  suboptimalEnds?: boolean;
  /** How much lower the sub-optimal demonstrator's train success is than the optimal one's (at least; default 0.1). */
  suboptimalMargin?: number;
  /** Episodes per measurement (default 100); an environment behind a server may use fewer. */
  episodes?: number;
  /** False where the environment seed does not change the tasks (a server decides them). Default true. */
  seedMatters?: boolean;
  /**
   * What must never be shared between train, validation and test: by default a task's first context (its
   * question as the agent sees it); an environment may name its own (textworld: the world).
   */
  splitKey?: (env: Environment, task: Task) => Promise<string>;
  /** Distinct tasks (split keys) at least among 300 train draws (default 1; a small task set has few). */
  minDistinctTrainTasks?: number;
  /** Malformed or impossible actions, besides the empty one: each gets an error observation. */
  malformedActions: string[][];
  /** Configs `makeEnv` refuses, each with what the error must say (the field's path). */
  configErrors: [Record<string, unknown>, RegExp][];
}

export interface Played {
  task: Task;
  contexts: string[][];
  actions: string[][];
  outcomes: StepOutcome[];
  success: boolean;
}

/** Plays the demonstrator on `task` for up to `budget` steps (or from `episode`, already started). */
export async function playDemonstrator(env: Environment, task: Task, rng: Rng, suboptimal: boolean, budget: number, episode?: Episode): Promise<Played> {
  const ep = episode ?? (await env.start(task));
  const act = env.demonstrator(task, rng, suboptimal);
  const out: Played = { task, contexts: [], actions: [], outcomes: [], success: false };
  for (let t = 0; t < budget; t++) {
    out.contexts.push(ep.context());
    const action = await act(ep);
    out.actions.push(action);
    const o = await ep.step(action);
    out.outcomes.push(o);
    if (o.done) {
      out.success = o.success;
      break;
    }
  }
  out.contexts.push(ep.context());
  return out;
}

const words = (p: Played) => [...p.contexts, ...p.actions, ...p.outcomes.map((o) => o.observation)];

/**
 * Registers the contract's tests for `name`. `makeEnv` is called inside the tests (so it may use what a
 * `before` hook set up, a server's URL).
 */
export function environmentContract(name: string, makeEnv: MakeEnv, options: EnvironmentContractOptions): void {
  const o = { suboptimalEnds: false, suboptimalMargin: 0.1, episodes: 100, seedMatters: true, boundedConfigs: [], ...options };
  const splitKey = o.splitKey ?? (async (env: Environment, task: Task) => (await env.start(task)).context().join(" "));
  const minSuccess: Record<Split, number> = {
    train: 0.95,
    test: 0.95,
    ood: 0.95,
    ...options.minSuccess,
    validation: options.minSuccess?.validation ?? options.minSuccess?.test ?? 0.95,
  };
  const budget = o.stepBudget;
  const n = o.episodes;

  test(`${name} contract: the same seed gives the same vocabulary, tasks and episodes${o.seedMatters ? "; another seed differs" : ""}`, async () => {
    const a = await makeEnv({}, 11);
    const b = await makeEnv({}, 11);
    assert.deepEqual(a.vocabulary(), b.vocabulary());
    assert.equal(new Set(a.vocabulary()).size, a.vocabulary().length, "no word twice");
    assert.deepEqual(a.families, b.families);
    const ra = new Rng(5);
    const rb = new Rng(5);
    const played: Played[] = [];
    for (let i = 0; i < 40; i++) {
      const split = SPLITS[i % SPLITS.length];
      const ta = a.sampleTask(ra, split);
      const tb = b.sampleTask(rb, split);
      assert.deepEqual(ta, tb);
      const pa = await playDemonstrator(a, ta, ra, i % 2 === 0, budget);
      const pb = await playDemonstrator(b, tb, rb, i % 2 === 0, budget);
      assert.deepEqual(words(pa), words(pb), ta.id);
      assert.deepEqual(
        pa.outcomes.map((x) => [x.reward, x.done, x.success]),
        pb.outcomes.map((x) => [x.reward, x.done, x.success]),
      );
      played.push(pa);
    }
    // A task is data: a copy through JSON plays the same episode, also in a fresh environment (another worker).
    const task = played[0].task;
    const fresh = await makeEnv({}, 11);
    const copy = JSON.parse(JSON.stringify(task)) as Task;
    assert.deepEqual(words(await playDemonstrator(fresh, copy, new Rng(1), false, budget)), words(await playDemonstrator(a, task, new Rng(1), false, budget)));
    if (!o.seedMatters) return;
    const c = await makeEnv({}, 12);
    const rc = new Rng(5);
    let differ = 0;
    for (let i = 0; i < 40; i++) {
      const tc = c.sampleTask(rc, SPLITS[i % SPLITS.length]);
      const pc = await playDemonstrator(c, tc, rc, i % 2 === 0, budget);
      if (JSON.stringify(words(pc)) !== JSON.stringify(words(played[i]))) differ++;
    }
    assert.ok(differ >= 5, `another environment seed changed only ${differ} of 40 episodes`);
  });

  test(`${name} contract: train, validation and test are pairwise disjoint tasks of the in-domain families; ood holds only held-out families`, async () => {
    const env = await makeEnv({}, 3);
    const { train, ood } = env.families;
    assert.ok(train.length > 0 && ood.length > 0, JSON.stringify(env.families));
    for (const f of ood) assert.ok(!train.includes(f), `${f} is both in-domain and held out`);
    const rng = new Rng(9);
    assert.deepEqual([...env.splits], [...SPLITS], "every split is served");
    const keys: Record<Split, Set<string>> = { train: new Set(), validation: new Set(), test: new Set(), ood: new Set() };
    const families: Record<Split, Set<string>> = { train: new Set(), validation: new Set(), test: new Set(), ood: new Set() };
    for (let i = 0; i < 300; i++) {
      for (const split of SPLITS) {
        if (split !== "train" && i >= n) continue;
        const t = env.sampleTask(rng, split);
        assert.equal(t.split, split, t.id);
        assert.ok((split === "ood" ? ood : train).includes(t.family), `${t.id}: family ${t.family} in the ${split} split`);
        families[split].add(t.family);
        keys[split].add(await splitKey(env, t));
      }
    }
    for (const k of keys.test) assert.ok(!keys.train.has(k), `a test task also occurs in train: ${k}`);
    for (const k of keys.validation) {
      assert.ok(!keys.train.has(k), `a validation task also occurs in train: ${k}`);
      assert.ok(!keys.test.has(k), `a validation task also occurs in test: ${k}`);
    }
    assert.ok(keys.train.size >= (o.minDistinctTrainTasks ?? 1), `only ${keys.train.size} distinct train tasks in 300`);
    assert.deepEqual([...families.train].sort(), [...train].sort(), "train samples every in-domain family");
    assert.deepEqual([...families.test].sort(), [...train].sort(), "test samples every in-domain family");
    assert.deepEqual([...families.validation].sort(), [...train].sort(), "validation samples every in-domain family");
    assert.deepEqual([...families.ood].sort(), [...ood].sort(), "ood samples every held-out family");
    assert.throws(() => env.sampleTask(rng, "train", ood[0]), /not in the train split/);
    assert.throws(() => env.sampleTask(rng, "test", ood[0]), /not in the test split/);
    assert.throws(() => env.sampleTask(rng, "validation", ood[0]), /not in the validation split/);
    assert.throws(() => env.sampleTask(rng, "ood", train[0]), /not in the ood split/);
  });

  test(`${name} contract: the optimal demonstrator solves train, validation, test and each held-out family within ${budget} steps; the sub-optimal one is clearly worse`, async () => {
    const env = await makeEnv({}, 3);
    const rng = new Rng(21);
    const rate = async (split: Split, suboptimal: boolean, family?: string) => {
      let wins = 0;
      for (let i = 0; i < n; i++) {
        const p = await playDemonstrator(env, env.sampleTask(rng, split, family), rng, suboptimal, budget);
        if (!suboptimal || o.suboptimalEnds)
          assert.ok(p.outcomes.at(-1)?.done, `${p.task.id}: the demonstrator (sub-optimal: ${suboptimal}) ends within ${budget} steps`);
        for (const a of p.actions) {
          assert.ok(a.length >= o.actionWords[0] && a.length <= o.actionWords[1], `action of ${a.length} words: ${a.join(" ")}`);
          assert.ok(!("error" in parseToolCall(a, o.tools)), `a demonstrated action is one tool call: ${a.join(" ")}`);
        }
        if (p.success) wins++;
      }
      return wins / n;
    };
    const optimal = await rate("train", false);
    assert.ok(optimal >= minSuccess.train, `optimal train success ${optimal}`);
    const test = await rate("test", false);
    assert.ok(test >= minSuccess.test, `optimal test success ${test}`);
    const validation = await rate("validation", false);
    assert.ok(validation >= minSuccess.validation, `optimal validation success ${validation}`);
    for (const family of env.families.ood) {
      const r = await rate("ood", false, family);
      assert.ok(r >= minSuccess.ood, `${family}: optimal success ${r}`);
    }
    const sub = await rate("train", true);
    assert.ok(sub <= optimal - o.suboptimalMargin, `sub-optimal ${sub} vs optimal ${optimal}`);
  });

  test(`${name} contract: every context stays within maxContextWords and begins with the goal; every word shown or demonstrated is in vocabulary()`, async () => {
    for (const config of [{}, ...o.boundedConfigs]) {
      const env = await makeEnv(config, 4);
      const max = (config as { maxContextWords?: number }).maxContextWords ?? o.maxContextWords;
      const vocab = new Set(env.vocabulary());
      const inVocab = (ws: string[], where: string) => {
        for (const w of ws) assert.ok(vocab.has(w), `"${w}" (in ${where}: ${ws.join(" ")}) is not in the vocabulary`);
      };
      const all = env.vocabulary();
      const rng = new Rng(2);
      for (let i = 0; i < n; i++) {
        const task = env.sampleTask(rng, SPLITS[i % SPLITS.length]);
        inVocab(task.prompt, `${task.id} prompt`);
        const ep = await env.start(task);
        const goal = o.goal(task, ep.context());
        const act = env.demonstrator(task, rng, i % 4 === 0);
        // The demonstrator's actions, with junk (random words) between: contexts grow as long as they can.
        for (let t = 0; t < 2 * budget; t++) {
          const ctx = ep.context();
          assert.ok(ctx.length <= max, `${task.id}: context of ${ctx.length} words > ${max}: ${ctx.join(" ")}`);
          assert.deepEqual(ctx.slice(0, goal.length), goal, `${task.id}: the context begins with the goal`);
          inVocab(ctx, `${task.id} context`);
          const junk = rng.next() < 0.3;
          const action = junk ? Array.from({ length: 1 + rng.int(6) }, () => rng.pick(all)) : await act(ep);
          if (!junk) inVocab(action, `${task.id} demonstration`);
          const out = await ep.step(action);
          inVocab(out.observation, `${task.id} observation`);
          if (out.done) break;
        }
      }
    }
  });

  test(`${name} contract: reward arrives only on the final step, 1 for a success and 0 otherwise`, async () => {
    const env = await makeEnv({}, 3);
    const rng = new Rng(8);
    let rewarded = 0;
    for (let i = 0; i < n; i++) {
      const p = await playDemonstrator(env, env.sampleTask(rng, SPLITS[i % SPLITS.length]), rng, i % 3 === 0, budget);
      p.outcomes.forEach((x, t) => {
        assert.equal(x.done, t === p.outcomes.length - 1 && x.done, `${p.task.id}: done only at the end`);
        if (!x.done) assert.deepEqual([x.reward, x.success], [0, false], `${p.task.id} step ${t}`);
        else assert.equal(x.reward, x.success ? 1 : 0, `${p.task.id}: the final reward`);
      });
      if (p.success) rewarded++;
    }
    assert.ok(rewarded > 0);
  });

  test(`${name} contract: a malformed action gets an error observation, reward 0, not done, never a throw; the episode goes on`, async () => {
    const env = await makeEnv({}, 3);
    const vocab = new Set(env.vocabulary());
    const rng = new Rng(4);
    for (const split of SPLITS) {
      const task = env.sampleTask(rng, split);
      const ep = await env.start(task);
      for (const action of [[], ...o.malformedActions]) {
        const out = await ep.step(action);
        const what = `${task.id}: "${action.join(" ")}"`;
        assert.ok(out.error, `no error for ${what}`);
        assert.deepEqual([out.reward, out.done, out.success], [0, false, false], what);
        assert.ok(!out.fault, `${what}: the agent's mistake, not an environment fault`);
        assert.ok(out.observation.includes("error"), `${what}: ${out.observation.join(" ")}`);
        for (const w of out.observation) assert.ok(vocab.has(w), `${what}: "${w}" is not in the vocabulary`);
        assert.ok(ep.context().includes("error"), `${what}: the agent reads the error in the next context`);
      }
      const p = await playDemonstrator(env, task, rng, false, budget, ep);
      assert.ok(p.success, `${task.id}: the optimal demonstrator still solves the episode after the errors`);
    }
  });

  test(`${name} contract: config errors name the field`, async () => {
    assert.ok(o.configErrors.length > 0);
    for (const [config, re] of o.configErrors) {
      await assert.rejects(
        async () => makeEnv(config, 1),
        (err: Error) => {
          assert.match(err.message, re, JSON.stringify(config));
          assert.match(err.message, /spec\.environment\.config\./, JSON.stringify(config));
          return true;
        },
      );
    }
  });
}
