import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../common/rng.ts";
import { SPECIALS } from "../../learner/tokenizer.ts";
import { parseToolCall } from "../../workers/action-parser.ts";
import type { Environment, Split, Task } from "../../workers/environment.ts";
import type { TextworldEpisode } from "../../workers/envs/textworld/episode.ts";
import { optimalDecision } from "../../workers/envs/textworld/demonstrator.ts";
import { createTextworld } from "../../workers/envs/textworld/index.ts";
import { signature } from "../../workers/envs/textworld/world.ts";
import { DIRS } from "../../workers/envs/textworld/words.ts";

const TOOLS = ["go", "take", "open", "unlock", "put"];
const BUDGET = 8;

interface Rollout {
  success: boolean;
  steps: number;
  words: string[][];
  rewards: number[];
  dones: boolean[];
}

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

const env = createTextworld({}, 3);

async function sig(e: Environment, task: Task): Promise<string> {
  return signature(((await e.start(task)) as TextworldEpisode).world);
}

test("textworld: same config and seed give the same tasks, worlds and episodes; another seed differs", async () => {
  const a = createTextworld({}, 11);
  const b = createTextworld({}, 11);
  const c = createTextworld({}, 12);
  assert.deepEqual(a.vocabulary(), b.vocabulary());
  const ra = new Rng(5);
  const rb = new Rng(5);
  let differ = 0;
  for (let i = 0; i < 30; i++) {
    const split: Split = (["train", "test", "ood"] as const)[i % 3];
    const ta = a.sampleTask(ra, split);
    const tb = b.sampleTask(rb, split);
    assert.deepEqual(ta, tb);
    assert.equal(await sig(a, ta), await sig(b, tb));
    assert.deepEqual((await play(a, ta, ra, i % 2 === 0)).words, (await play(b, tb, rb, i % 2 === 0)).words);
    if (split === "ood" && (await sig(c, ta)) !== (await sig(a, ta))) differ++;
  }
  assert.ok(differ >= 5, "the environment seed changes the worlds");
  // A task id alone rebuilds its world, also in a fresh environment (a different worker).
  const t = a.sampleTask(new Rng(1), "train");
  assert.equal(await sig(createTextworld({}, 11), t), await sig(a, t));
});

test("textworld: train and test are disjoint sets of worlds from the in-domain families; ood holds only held-out families", async () => {
  assert.deepEqual(env.families, { train: ["fetch", "place"], ood: ["larger-map", "locked"] });
  const rng = new Rng(9);
  const sigs: Record<Split, Set<string>> = { train: new Set(), test: new Set(), ood: new Set() };
  const fams: Record<Split, Set<string>> = { train: new Set(), test: new Set(), ood: new Set() };
  for (let i = 0; i < 300; i++) {
    for (const split of ["train", "test", "ood"] as const) {
      if (split !== "train" && i >= 100) continue;
      const t = env.sampleTask(rng, split);
      assert.equal(t.split, split);
      fams[split].add(t.family);
      sigs[split].add(await sig(env, t));
    }
  }
  for (const s of sigs.test) assert.ok(!sigs.train.has(s), "a test world also occurs in train");
  assert.deepEqual([...fams.train].sort(), ["fetch", "place"]);
  assert.deepEqual([...fams.test].sort(), ["fetch", "place"]);
  assert.deepEqual([...fams.ood].sort(), ["larger-map", "locked"]);
  assert.ok(sigs.train.size > 250, `only ${sigs.train.size} distinct train worlds`);
  assert.throws(() => env.sampleTask(rng, "train", "locked"), /not in the train split/);
  assert.throws(() => env.sampleTask(rng, "ood", "fetch"), /not in the ood split/);
  // Held-out maps are larger / locked.
  const big = env.sampleTask(rng, "ood", "larger-map");
  assert.equal(((await env.start(big)) as TextworldEpisode).world.rooms.length, 7);
  const locked = env.sampleTask(rng, "ood", "locked");
  const w = ((await env.start(locked)) as TextworldEpisode).world;
  assert.equal(w.locked.length, 1);
  assert.ok(!w.floor[w.start].includes("key"), "the locked family hides the key in another room");
});

test("textworld: the optimal demonstrator solves train tasks and each ood family within 8 steps; sub-optimal clearly worse", async () => {
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
  assert.ok(sub / n <= opt / n - 0.1, `sub-optimal ${sub / n} vs optimal ${opt / n}`);
  for (const family of env.families.ood) {
    let ok = 0;
    for (let i = 0; i < 100; i++) if ((await play(env, env.sampleTask(rng, "ood", family), rng, false)).success) ok++;
    assert.ok(ok / 100 >= 0.95, `${family}: ${ok / 100}`);
  }
  let testOk = 0;
  for (let i = 0; i < 60; i++) if ((await play(env, env.sampleTask(rng, "test"), rng, false)).success) testOk++;
  assert.ok(testOk / 60 >= 0.99);
});

test("textworld: contexts stay within maxContextWords and keep the goal; every word is in the vocabulary", async () => {
  for (const cfg of [{}, { maxContextWords: 64 }]) {
    const e = createTextworld(cfg, 4);
    const max = (cfg as { maxContextWords?: number }).maxContextWords ?? 96;
    const vocab = new Set([...e.vocabulary(), ...SPECIALS]);
    const rng = new Rng(2);
    for (let i = 0; i < 150; i++) {
      const split = (["train", "test", "ood"] as const)[i % 3];
      const task = e.sampleTask(rng, split);
      const r = await play(e, task, rng, i % 4 === 0);
      for (const words of r.words) for (const w of words) assert.ok(vocab.has(w), `"${w}" is not in the vocabulary (${task.id})`);
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

test("textworld: every optimal demonstrator decision is a function of the context words alone", async () => {
  // Behaviour cloning sees only the context: two states that show the same context must get the same
  // decision, or the planner is using something the clone cannot see (e.g. a memory dropped by the
  // word budget). States come from optimal and sub-optimal play on every split, at two context budgets.
  for (const cfg of [{}, { maxContextWords: 64 }]) {
    const e = createTextworld(cfg, 6);
    const rng = new Rng(9);
    const byContext = new Map<string, string>();
    let states = 0;
    let dropped = 0;
    for (let i = 0; i < 300; i++) {
      const split = (["train", "test", "ood"] as const)[i % 3];
      const task = e.sampleTask(rng, split);
      const ep = (await e.start(task)) as TextworldEpisode;
      const act = e.demonstrator(task, rng, i % 2 === 0);
      for (let t = 0; t < BUDGET && !ep.done; t++) {
        const ctx = ep.context().join(" ");
        const decision = optimalDecision(ep).words.join(" ");
        // The same decision when the planner knows only the rooms the context still remembers.
        const shown = ep.visited.filter((r) => r === ep.at || ctx.includes(`remember ${ep.world.rooms[r].name} :`));
        if (shown.length < ep.visited.length) {
          const all = [...ep.visited];
          ep.visited.splice(0, all.length, ...shown);
          const fromContext = optimalDecision(ep).words.join(" ");
          ep.visited.splice(0, shown.length, ...all);
          assert.equal(fromContext, decision, `the decision uses a room the context dropped (${task.id}):\n${ctx}`);
          dropped++;
        }
        const seen = byContext.get(ctx);
        assert.ok(seen === undefined || seen === decision, `same context, different decisions (${task.id}):\n${ctx}\n  ${seen}\n  ${decision}`);
        byContext.set(ctx, decision);
        states++;
        await ep.step(await act(ep));
      }
    }
    assert.ok(byContext.size > 0.5 * states, `${byContext.size} distinct contexts of ${states} states`);
    if (cfg.maxContextWords) assert.ok(dropped > 0, "the small budget drops memories");
  }
});

test("textworld: reward arrives only on the final step", async () => {
  const rng = new Rng(8);
  let rewarded = 0;
  for (let i = 0; i < 120; i++) {
    const r = await play(env, env.sampleTask(rng, i % 2 ? "train" : "ood"), rng, i % 3 === 0);
    r.rewards.forEach((x, t) => {
      if (t < r.rewards.length - 1 || !r.dones[t]) assert.equal(x, 0);
    });
    if (r.dones[r.dones.length - 1]) assert.equal(r.rewards[r.rewards.length - 1], 1);
    if (r.success) rewarded++;
  }
  assert.ok(rewarded > 0);
});

test("textworld: malformed and impossible commands give an error observation, reward 0, not done, never a throw", async () => {
  const rng = new Rng(4);
  const task = env.sampleTask(rng, "ood", "locked");
  const ep = (await env.start(task)) as TextworldEpisode;
  const vocab = new Set([...env.vocabulary(), ...SPECIALS]);
  const room = ep.world.rooms[ep.at];
  const noExit = DIRS.find((d) => room.exits[d] === undefined);
  const bad = [
    [],
    ["hello"],
    ["go", "[", "up", "]"],
    ["go", "[", "north", "east", "]"],
    ...(noExit ? [["go", "[", noExit, "]"]] : []),
    ["take", "[", "unicorn", "]"],
    ["take", "[", "gem", "coin", "]"],
    ["open", "[", "door", "]"],
    ["unlock", "[", "north", "]"].map((w) => (w === "north" ? (noExit ?? "north") : w)),
    ["put", "[", "coin", "]"],
    ["put", "[", "coin", "in", "chest", "]"],
    ["dance", "[", "now", "]"],
    ["take", "[", "key", "]", "take", "[", "key", "]"],
  ];
  for (const action of bad) {
    const out = await ep.step(action);
    assert.deepEqual([out.reward, out.done], [0, false], action.join(" "));
    assert.ok(out.error, `no error for ${action.join(" ")}`);
    assert.deepEqual(out.observation.slice(0, 2), ["<obs>", "error"], out.observation.join(" "));
    for (const w of out.observation) assert.ok(vocab.has(w), w);
    assert.ok(ep.context().includes("error"));
  }
});

test("textworld: doors, keys, containers and put behave as described", async () => {
  const rng = new Rng(6);
  // Find a locked world where the locked door is next to the room holding the key after a short walk:
  // play the optimal demonstrator and check each command's effect as it goes.
  const task = env.sampleTask(rng, "ood", "locked");
  const ep = (await env.start(task)) as TextworldEpisode;
  const act = env.demonstrator(task, rng, false);
  const seen = new Set<string>();
  for (let t = 0; t < BUDGET && !ep.done; t++) {
    const action = await act(ep);
    const tool = action[action.indexOf("[") - 1];
    seen.add(tool);
    if (tool === "unlock") {
      const dir = action[action.indexOf("[") + 1];
      const blocked = await ep.step(["go", "[", dir, "]"]);
      assert.ok(blocked.error && blocked.observation.includes("locked"), "a locked door blocks the way");
    }
    const before = ep.at;
    const out = await ep.step(action);
    assert.ok(!out.error, `${action.join(" ")} → ${out.observation.join(" ")}`);
    if (tool === "go") {
      const dir = action[action.indexOf("[") + 1] as (typeof DIRS)[number];
      assert.equal(ep.at, ep.world.rooms[before].exits[dir]);
      assert.ok(out.observation.includes(ep.world.rooms[ep.at].name));
    }
  }
  assert.ok(ep.done && ep.success);
  assert.ok(seen.has("unlock") && seen.has("take") && seen.has("go"));

  // Going back and forth returns to the same room (directions are consistent).
  const t2 = env.sampleTask(rng, "ood", "larger-map");
  const e2 = (await env.start(t2)) as TextworldEpisode;
  const start = e2.at;
  const dir = DIRS.find((d) => e2.world.rooms[start].exits[d] !== undefined && !e2.isLocked(start, d))!;
  await e2.step(["go", "[", dir, "]"]);
  const back = { north: "south", south: "north", east: "west", west: "east" }[dir];
  await e2.step(["go", "[", back, "]"]);
  assert.equal(e2.at, start);
});

test("textworld: stateKey identifies the environment state", async () => {
  const rng = new Rng(3);
  const task = env.sampleTask(rng, "train", "fetch");
  const a = await env.start(task);
  const b = await env.start(task);
  assert.equal(a.stateKey(), b.stateKey());
  const action = await env.demonstrator(task, rng, false)(a);
  await a.step(action);
  assert.notEqual(a.stateKey(), b.stateKey());
  await b.step(action);
  assert.equal(a.stateKey(), b.stateKey());
  const errA = await a.step(["go", "[", "nowhere", "]"]);
  assert.ok(errA.error);
});

test("textworld: config errors name the field", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ roomz: 3 }, /spec\.environment\.config\.roomz: unknown key/],
    [{ rooms: 2.5 }, /spec\.environment\.config\.rooms: expected an integer/],
    [{ rooms: "4" }, /spec\.environment\.config\.rooms/],
    [{ rooms: 8, oodRooms: 7 }, /spec\.environment\.config\.oodRooms/],
    [{ lockedProb: 2 }, /spec\.environment\.config\.lockedProb/],
    [{ maxContextWords: 10 }, /spec\.environment\.config\.maxContextWords/],
    [{ stepBudget: 0 }, /spec\.environment\.config\.stepBudget/],
  ];
  for (const [cfg, re] of cases) assert.throws(() => createTextworld(cfg, 1), re);
  const e = createTextworld({ rooms: 3, oodRooms: 5 }, 1);
  const t = e.sampleTask(new Rng(1), "ood", "larger-map");
  assert.equal(((await e.start(t)) as TextworldEpisode).world.rooms.length, 5);
});
