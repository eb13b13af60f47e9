// What is specific to textworld. The contract every environment keeps (determinism, disjoint splits,
// the demonstrator, the context bound, reward at the end, malformed actions, config errors) runs in
// test/unit/environment-contract.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../core/rng.ts";
import { SPECIALS } from "../../policy/tokenizer.ts";
import type { Environment, Task } from "../../envs/environment.ts";
import type { TextworldEpisode } from "../../envs/textworld/episode.ts";
import { optimalDecision } from "../../envs/textworld/demonstrator.ts";
import { createTextworld } from "../../envs/textworld/index.ts";
import { signature } from "../../envs/textworld/world.ts";
import { DIRS } from "../../envs/textworld/words.ts";

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

test("textworld: a task's world is a function of the seed and the task id; another seed builds other worlds", async () => {
  const a = createTextworld({}, 11);
  const c = createTextworld({}, 12);
  const rng = new Rng(5);
  let differ = 0;
  for (let i = 0; i < 30; i++) {
    const task = a.sampleTask(rng, (["train", "test", "ood"] as const)[i % 3]);
    assert.equal(await sig(createTextworld({}, 11), task), await sig(a, task), "a task id alone rebuilds its world, also in a fresh environment");
    if (task.split === "ood" && (await sig(c, task)) !== (await sig(a, task))) differ++;
  }
  assert.ok(differ >= 5, "the environment seed changes the worlds");
});

test("textworld: the families by name; held-out maps are larger or locked, with the key in another room", async () => {
  assert.deepEqual(env.families, { train: ["fetch", "place"], ood: ["larger-map", "locked"] });
  const rng = new Rng(9);
  const big = env.sampleTask(rng, "ood", "larger-map");
  assert.equal(((await env.start(big)) as TextworldEpisode).world.rooms.length, 7);
  const locked = env.sampleTask(rng, "ood", "locked");
  const w = ((await env.start(locked)) as TextworldEpisode).world;
  assert.equal(w.locked.length, 1);
  assert.ok(!w.floor[w.start].includes("key"), "the locked family hides the key in another room");
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

test("textworld: an episode ends only when the goal is reached (reward 1)", async () => {
  const rng = new Rng(8);
  let ended = 0;
  for (let i = 0; i < 120; i++) {
    const r = await play(env, env.sampleTask(rng, i % 2 ? "train" : "ood"), rng, i % 3 === 0);
    if (r.dones.at(-1)) {
      ended++;
      assert.deepEqual([r.rewards.at(-1), r.success], [1, true]);
    }
  }
  assert.ok(ended > 0);
});

test("textworld: commands impossible in this world (no exit that way, no door to open, no key, nothing carried) are errors", async () => {
  const rng = new Rng(4);
  const task = env.sampleTask(rng, "ood", "locked");
  const ep = (await env.start(task)) as TextworldEpisode;
  const vocab = new Set([...env.vocabulary(), ...SPECIALS]);
  const room = ep.world.rooms[ep.at];
  const noExit = DIRS.find((d) => room.exits[d] === undefined);
  const bad = [
    ...(noExit ? [["go", "[", noExit, "]"]] : []),
    ["open", "[", "door", "]"],
    ["unlock", "[", "north", "]"].map((w) => (w === "north" ? (noExit ?? "north") : w)),
    ["put", "[", "coin", "]"],
    ["put", "[", "coin", "in", "chest", "]"],
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

test("textworld: oodRooms sets the size of the larger maps", async () => {
  const e = createTextworld({ rooms: 3, oodRooms: 5 }, 1);
  const t = e.sampleTask(new Rng(1), "ood", "larger-map");
  assert.equal(((await e.start(t)) as TextworldEpisode).world.rooms.length, 5);
});

test("textworld: no test or validation world is a training world (nor each other's); with heldOutGoals no held-out goal is a training goal either", async () => {
  for (const seed of [1, 2, 3]) {
    const byWorld = createTextworld({}, seed);
    const byGoal = createTextworld({ heldOutGoals: 1 }, seed);
    const rng = new Rng(seed);
    const worlds = new Set<string>();
    const goals = new Set<string>();
    const heldOutGoals = new Set<string>();
    for (let i = 0; i < 1500; i++) {
      worlds.add(await sig(byWorld, byWorld.sampleTask(rng, "train")));
      goals.add(byGoal.sampleTask(rng, "train").answer);
    }
    let sharedGoals = 0;
    for (let i = 0; i < 300; i++) {
      const t = byWorld.sampleTask(rng, "test");
      assert.ok(!worlds.has(await sig(byWorld, t)), `seed ${seed}: test world ${t.id} is a training world`);
      if (goals.has(t.answer)) sharedGoals++; // the default shares goals (in other worlds)
      for (const split of ["test", "ood"] as const) {
        const g = byGoal.sampleTask(rng, split);
        assert.ok(!goals.has(g.answer), `seed ${seed}: heldOutGoals ${split} goal "${g.answer}" (${g.id}) is a training goal`);
        heldOutGoals.add(g.answer);
      }
    }
    assert.ok(sharedGoals > 150, `by world, most test goals are training goals (${sharedGoals}/300)`);
    for (let i = 0; i < 1500; i++) heldOutGoals.add(byGoal.sampleTask(rng, "test").answer);
    assert.ok(heldOutGoals.size >= 200, `seed ${seed}: ${heldOutGoals.size} distinct held-out goals`);
    // Validation: neither a training nor a test world; with heldOutGoals neither a training nor a test (or OOD) goal.
    const testWorlds = new Set<string>();
    for (let i = 0; i < 300; i++) testWorlds.add(await sig(byWorld, byWorld.sampleTask(rng, "test")));
    const validationGoals = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const t = byWorld.sampleTask(rng, "validation");
      assert.equal(t.split, "validation");
      const w = await sig(byWorld, t);
      assert.ok(!worlds.has(w) && !testWorlds.has(w), `seed ${seed}: validation world ${t.id} is a training or test world`);
      const g = byGoal.sampleTask(rng, "validation").answer;
      assert.ok(!goals.has(g) && !heldOutGoals.has(g), `seed ${seed}: heldOutGoals validation goal "${g}" is a training or held-out test goal`);
      validationGoals.add(g);
    }
    assert.ok(validationGoals.size >= 50, `seed ${seed}: ${validationGoals.size} distinct validation goals`);
  }
  assert.throws(() => createTextworld({ heldOutGoals: 2 }, 1), /spec\.environment\.config\.heldOutGoals: expected an integer between 0 and 1, got 2/);
});

test("textworld stepCounter: the room description starts with the steps taken, errors included; off, nothing changes", async () => {
  const counted = createTextworld({ stepCounter: 1 }, 3);
  const rng = new Rng(8);
  const task = counted.sampleTask(rng, "train", "fetch");
  const ep = (await counted.start(task)) as TextworldEpisode;
  const current = () => {
    const ctx = ep.context();
    return ctx.slice(ctx.lastIndexOf("<obs>") + 1);
  };
  assert.deepEqual(current().slice(0, 4), ["step", "0", ".", "you"]);
  const noExit = DIRS.find((d) => ep.world.rooms[ep.at].exits[d] === undefined);
  const out = await ep.step(["go", "[", noExit ?? "up", "]"]);
  assert.ok(out.error, "a command that fails is still a step");
  assert.deepEqual(current().slice(0, 3), ["step", "1", "."]);
  assert.deepEqual(out.observation.slice(out.observation.lastIndexOf("<obs>") + 1).slice(0, 3), ["step", "1", "."]);
  for (let t = 2; t <= 12; t++) await ep.step(["go", "[", noExit ?? "up", "]"]);
  assert.deepEqual(current().slice(0, 4), ["step", "1", "2", "."], "a count of two digits is two words");
  const vocab = new Set(counted.vocabulary());
  for (const w of ["step", ...Array.from({ length: 10 }, (_, i) => String(i))]) assert.ok(vocab.has(w), w);

  // Off (the default): no counter, and the vocabulary has no digits (the model is the same as before).
  const plain = (await env.start(env.sampleTask(new Rng(8), "train", "fetch"))) as TextworldEpisode;
  assert.ok(!plain.context().includes("step") && !plain.context().includes("0"));
  assert.ok(!env.vocabulary().includes("0"));
});
