// The http environment against real servers: the reference servers (examples/http-env/server.mjs, and
// server.py to show another language) as child processes on a free port, driven through the agent loop,
// the warm-up and a real `steppo run`; and a misbehaving server in this process whose timeouts, garbage,
// 5xx and dropped connections must become error observations (on /step) or clear errors naming the URL
// (on /info, /reset), never a crash.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { InMemoryBus } from "../../runtime/in-memory-bus.ts";
import { parseJob } from "../../crds/job-spec.ts";
import { Rng } from "../../core/rng.ts";
import { collectDemonstrations } from "../../learner/demonstrations.ts";
import { evalSets } from "../../learner/evaluation.ts";
import { runJob } from "../../runtime/run-job.ts";
import type { Decoder } from "../../policy/model.ts";
import { EOS_STEP, Tokenizer } from "../../policy/tokenizer.ts";
import { type EpisodeRequest, runEpisodes, type TokenPolicy } from "../../workers/agent-loop.ts";
import type { Environment } from "../../envs/environment.ts";
import { openEnvironment } from "../../envs/registry.ts";
import { RolloutWorker } from "../../workers/rollout-worker.ts";

const ROOT = join(import.meta.dirname, "../..");
/** The reference servers: one task, two languages. The Python one needs python3 on the PATH. */
const REFERENCE_SERVERS = [
  { language: "JavaScript", command: process.execPath, script: join(ROOT, "examples/http-env/server.mjs"), name: "calculator" },
  { language: "Python", command: "python3", script: join(ROOT, "examples/http-env/server.py"), name: "calculator-py" },
];
const EXAMPLE_JOB = join(ROOT, "examples/http-env/job.yaml");
const BIN = join(ROOT, "bin/steppo.mjs");

function openHttp(config: Record<string, unknown>): Promise<Environment> {
  return openEnvironment({ name: "http", config, maxSteps: 4, maxStepTokens: 10, bootstrapOnTruncation: false }, 1);
}

/** Starts a reference server on a free port; resolves once it prints the URL it listens on. */
async function startReferenceServer(command: string, script: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(command, [script, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the reference server did not start within 15 s: ${stderr}`)), 15_000);
    child.stdout.on("data", (d) => {
      stdout += d;
      const m = /listening on (http:\/\/\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the reference server exited with code ${code}: ${stderr}`));
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${command} ${script}: ${err.message}`));
    });
  });
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** `steppo …` as a child process, without blocking this process (a server in it must keep answering). */
async function steppo(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const [status] = (await once(child, "exit")) as [number | null];
  return { status, stdout, stderr };
}

/**
 * A policy that reads each context as words and writes `decide`'s words, token by token, then
 * <eos-step>: the agent loop's real path (encode, generate, decode, step) with a known behaviour.
 */
function wordPolicy(tokenizer: Tokenizer, decide: (context: string[], row: number) => string[]): TokenPolicy {
  const V = tokenizer.size;
  return {
    vocabSize: V,
    decoder(contexts: Int32Array[]): Decoder {
      const scripts = contexts.map((c, row) => [...tokenizer.encode(decide(tokenizer.decode(c), row)), EOS_STEP]);
      let t = 0;
      return {
        logits() {
          const out = new Float32Array(contexts.length * V).fill(-50);
          scripts.forEach((s, row) => {
            out[row * V + s[Math.min(t, s.length - 1)]] = 50;
          });
          return out;
        },
        push() {
          t++;
        },
        dispose() {},
      };
    },
  };
}

const LOOP = { workerId: "test", policyVersion: 0, maxSteps: 4, maxStepTokens: 10, contextLength: 128, temperature: 1, greedy: true };

for (const reference of REFERENCE_SERVERS)
  describe(`http environment with the reference server in ${reference.language}`, () => {
    let server: { url: string; stop: () => Promise<void> };
    let env: Environment;
    let tokenizer: Tokenizer;

    before(async () => {
      server = await startReferenceServer(reference.command, reference.script);
      env = await openHttp({ url: server.url, timeoutMs: 5000 });
      tokenizer = new Tokenizer(env.vocabulary());
    });
    after(async () => {
      await server?.stop();
    });

    test("/info becomes the environment's name, families and vocabulary (with the client's error words)", () => {
      assert.equal(env.name, `http:${reference.name}`);
      assert.deepEqual(env.families, { train: ["add", "sub"], ood: ["chain"] });
      const vocab = new Set(env.vocabulary());
      for (const w of ["question", "calc", "[", "]", "0", "18", "=", "<obs>", "</obs>", "environment", "timeout", "unreachable"]) assert.ok(vocab.has(w), w);
    });

    test("the agent loop plays episodes through the server: rewards, done, success and contexts as served", async () => {
      const rng = new Rng(7);
      const requests: EpisodeRequest[] = [];
      for (let g = 0; g < 4; g++) {
        const task = env.sampleTask(rng, "train");
        for (let k = 0; k < 2; k++) requests.push({ task, groupId: `g${g}`, trajId: `g${g}e${k}` });
      }
      // Even rows calculate and answer the result; odd rows answer one more than the result.
      const policy = wordPolicy(tokenizer, (ctx, row) => {
        const eq = ctx.lastIndexOf("=");
        if (eq >= 0) return ["answer", "[", String(Number(ctx[eq + 1]) + (row % 2)), "]"];
        const q = ctx.indexOf("is");
        return ["first", "calc", "[", ctx[q + 1], ctx[q + 2] === "plus" ? "+" : "-", ctx[q + 3], "]"];
      });
      const trajs = await runEpisodes(env, requests, policy, tokenizer, rng, LOOP);
      assert.equal(trajs.length, 8);
      trajs.forEach((t, row) => {
        assert.equal(t.steps.length, 2, t.trajId);
        assert.deepEqual(
          t.steps.map((s) => [s.reward, s.done]),
          [
            [0, false],
            [row % 2 === 0 ? 1 : 0, true],
          ],
        );
        assert.equal(t.success, row % 2 === 0);
        assert.equal(t.truncated, false);
        for (const s of t.steps) assert.ok(!tokenizer.decode(s.contextIds).includes("<unk>"), "every served word is in the declared vocabulary");
        const second = tokenizer.decode(t.steps[1].contextIds);
        assert.match(second.join(" "), /^<bos> question : what is \d+ (plus|minus) \d+ \? <obs> calc \d+ [+-] \d+ = \d+ <\/obs>$/);
      });
      // Both episodes of a group played the same task (the same prompt) from the same state.
      for (let g = 0; g < 4; g++) {
        assert.deepEqual(trajs[2 * g].steps[0].contextIds, trajs[2 * g + 1].steps[0].contextIds);
        assert.equal(trajs[2 * g].steps[0].stateKey, trajs[2 * g + 1].steps[0].stateKey);
      }
      assert.notEqual(trajs[0].steps[0].stateKey, trajs[0].steps[1].stateKey, "the state moves with the observations");
    });

    test("a task is (split, family, seed): the same at every reset; test and validation questions never appear in train, nor in each other", async () => {
      const rng = new Rng(3);
      const task = env.sampleTask(rng, "ood", "chain");
      assert.match(task.id, /^ood\/chain\/\d+$/);
      const [a, b] = await Promise.all([env.start(task), env.start(task)]);
      assert.deepEqual(a.context(), b.context());
      assert.match(a.context().join(" "), /^question : what is \d+ plus \d+ minus \d+ \?$/);
      const prompts = async (split: "train" | "validation" | "test", n: number) => {
        const eps = await Promise.all(Array.from({ length: n }, () => env.start(env.sampleTask(rng, split))));
        return new Set(eps.map((e) => e.context().join(" ")));
      };
      const train = await prompts("train", 300);
      const test = await prompts("test", 60);
      const validation = await prompts("validation", 60);
      assert.ok(train.size > 50 && test.size > 8 && validation.size > 8, `${train.size} train, ${test.size} test, ${validation.size} validation questions`);
      for (const q of test) assert.ok(!train.has(q), `test question asked in train: ${q}`);
      for (const q of validation) assert.ok(!train.has(q) && !test.has(q), `validation question asked in train or test: ${q}`);
      assert.deepEqual(env.splits, ["train", "validation", "test", "ood"], "the reference server declares validation");
      assert.throws(() => env.sampleTask(rng, "train", "chain"), /family "chain" is not in the train split/);
    });

    test("POST /demonstrate drives the warm-up: optimal demonstrations succeed, sub-optimal ones fail", async () => {
      const opts = { episodes: 20, maxSteps: 4, maxStepTokens: 10, contextLength: 128 };
      const good = await collectDemonstrations(env, tokenizer, new Rng(1), { ...opts, suboptimalFraction: 0 });
      assert.equal(good.successRate, 1);
      assert.equal(good.steps.length, 40, "calc then answer");
      const first = tokenizer.decode(good.steps[0].actionIds);
      assert.match(first.join(" "), /^first calc \[ \d+ [+-] \d+ \] <eos-step>$/);
      const bad = await collectDemonstrations(env, tokenizer, new Rng(1), { ...opts, suboptimalFraction: 1 });
      assert.equal(bad.successRate, 0);
    });

    // One end-to-end run is enough: it exercises the client, not the server's language.
    if (reference.language !== "JavaScript") return;
    test("steppo run trains the example job (examples/http-env/job.yaml) against the server", { timeout: 300_000 }, async () => {
      const dir = mkdtempSync(join(tmpdir(), "steppo-http-"));
      const job = yaml.load(readFileSync(EXAMPLE_JOB, "utf8")) as { metadata: { name: string }; spec: Record<string, Record<string, unknown>> };
      const spec = job.spec;
      (spec.environment.config as Record<string, unknown>).url = server.url;
      // The example as written, made small enough for a test.
      spec.model = { dModel: 16, layers: 1, heads: 2, contextLength: 64 };
      spec.warmup = { ...spec.warmup, demonstrations: 16, epochs: 1 };
      spec.rollout = { ...spec.rollout, episodesPerUpdate: 8 };
      spec.training = { ...spec.training, evalEvery: 1, evalEpisodes: 4 };
      spec.checkpoint = { interval: 1, keep: 2 };
      const jobFile = join(dir, "job.yaml");
      writeFileSync(jobFile, yaml.dump(job));
      const out = await steppo(["run", jobFile, "--updates", "2", "--run-dir", join(dir, "run"), "--summary", join(dir, "summary.json")]);
      assert.equal(out.status, 0, out.stderr);
      assert.match(out.stderr, /job http-calculator: http:calculator,/);
      assert.match(out.stderr, /warm-up: cloned \d+ steps from 16 demonstrations/);
      const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8"));
      assert.equal(summary.updates, 2);
      assert.ok(summary.envSteps >= 16, `${summary.envSteps} environment steps`);
      assert.deepEqual(Object.keys(summary.ood), ["chain"]);
      assert.ok(summary.validation.final >= 0 && summary.validation.final <= 1, "the validation set is evaluated, not an OOD family");
      assert.ok(summary.successRate.demonstrations > 0.3, "the warm-up played the server's demonstrations");
      for (const p of summary.checkpoints) assert.ok(existsSync(p), p);
    });
  });

// ---- a server that misbehaves on request ------------------------------------------------------------

interface Misbehaviour {
  /** /reset answers 503 this many more times (Infinity: always). */
  resetFailures: number;
  /** /reset answers 400 (a client error: not retried). */
  resetRejects: boolean;
  /** /info answers a malformed vocabulary. */
  badInfo: boolean;
  resets: number;
}

const FLAKY_WORDS = ["ok", "done", "slow", "garbage", "shape", "fail", "hangup"];
/** Longer than the client's deadline in these tests (200 ms). */
const SLOW_MS = 1500;

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : {};
}

/** An environment whose /step does what the action's first word says: answer, time out, garble, fail, hang up. */
function flakyServer(m: Misbehaviour): Server {
  return createServer(async (req, res) => {
    const b = await body(req);
    if (req.url === "/info") {
      const vocabulary = m.badInfo ? ["ok", "two words"] : FLAKY_WORDS;
      return json(res, 200, { name: "flaky", vocabulary, families: { train: ["only"], ood: [] } });
    }
    if (req.url === "/reset") {
      m.resets++;
      if (m.resetRejects) return json(res, 400, { error: "family: no such family" });
      if (m.resetFailures > 0) {
        m.resetFailures--;
        return json(res, 503, { error: "warming up" });
      }
      return json(res, 200, { episodeId: `e${m.resets}`, prompt: "say something", observation: "ready" });
    }
    const action = String(b.action ?? "").split(" ")[0];
    switch (action) {
      case "slow":
        setTimeout(() => json(res, 200, { observation: "late", reward: 0, done: false }), SLOW_MS);
        return;
      case "garbage":
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<html>oops</html>");
        return;
      case "shape":
        return json(res, 200, { observation: "x", reward: "lots", done: false });
      case "fail":
        return json(res, 500, { error: "boom" });
      case "hangup":
        req.socket.destroy();
        return;
      case "done":
        return json(res, 200, { observation: "well done", reward: 1, done: true, success: true });
      default:
        return json(res, 200, { observation: "ok", reward: 0, done: false });
    }
  });
}

async function listen(server: Server): Promise<string> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

describe("http environment with a misbehaving server", () => {
  const m: Misbehaviour = { resetFailures: 0, resetRejects: false, badInfo: false, resets: 0 };
  const server = flakyServer(m);
  let url: string;

  before(async () => {
    url = await listen(server);
  });
  after(async () => {
    await close(server);
  });

  test("a server whose /info does not declare validation serves no validation split: sampling refuses it, evaluation leaves it out", async () => {
    const env = await openHttp({ url, timeoutMs: 200, retries: 0 });
    assert.deepEqual(env.splits, ["train", "test", "ood"]);
    assert.throws(() => env.sampleTask(new Rng(1), "validation"), /serves no validation split \(its \/info does not say "validation": true\)/);
    assert.deepEqual(
      evalSets(env, 1, 3).map((s) => s.name),
      ["train", "test"],
    );
  });

  test("failed /step requests become error observations with the cause; the episode goes on", async () => {
    const env = await openHttp({ url, timeoutMs: 200, retries: 0 });
    const ep = await env.start(env.sampleTask(new Rng(1), "train"));
    const expected: [string, RegExp, string[]][] = [
      ["slow", /POST http:\/\/127\.0\.0\.1:\d+\/step: no reply within 200 ms/, ["environment", "timeout"]],
      ["garbage", /\/step: the reply is not JSON: "<html>oops<\/html>"/, ["environment", "bad", "reply"]],
      ["shape", /\/step: malformed reply: reward: expected a finite number, got "lots"/, ["environment", "bad", "reply"]],
      ["fail", /\/step: HTTP 500 "\{\\"error\\":\\"boom\\"\}"/, ["environment", "failed"]],
      ["hangup", /\/step: connection failed \(/, ["environment", "unreachable"]],
    ];
    for (const [action, cause, words] of expected) {
      const out = await ep.step([action]);
      assert.match(out.error ?? "", cause, action);
      assert.deepEqual(out.observation, ["<obs>", "error", ":", ...words, ".", "</obs>"], action);
      assert.deepEqual([out.reward, out.done, out.success], [0, false, false], action);
      assert.equal(out.fault, true, `${action}: an environment fault, not the agent's mistake`);
      assert.deepEqual(ep.context().slice(-words.length - 2), [...words, ".", "</obs>"], `${action}: the agent reads what went wrong`);
    }
    const fine = await ep.step(["ok"]);
    assert.equal(fine.error, undefined, "the episode continues after failures");
    const done = await ep.step(["done"]);
    assert.deepEqual([done.reward, done.done, done.success], [1, true, true]);
    const after = await ep.step(["ok"]);
    assert.ok(after.done && after.error === "episode already finished", "no request after done");
  });

  test("the agent loop ends every episode an environment fault hits and leaves it out; the others come back", async () => {
    const env = await openHttp({ url, timeoutMs: 200, retries: 0 });
    const tokenizer = new Tokenizer(env.vocabulary());
    // Rows are re-numbered each step among the episodes still running: "ok" (row 0) stays row 0.
    const rows = ["ok", "slow", "garbage", "shape", "fail", "hangup", "done"];
    const rng = new Rng(2);
    const requests = rows.map((_, i) => ({ task: env.sampleTask(rng, "train"), groupId: `g${i}`, trajId: `t${i}` }));
    const policy = wordPolicy(tokenizer, (_ctx, row) => [rows[row]]);
    const faults: string[] = [];
    const trajs = await runEpisodes(env, requests, policy, tokenizer, rng, { ...LOOP, maxSteps: 2, onFault: (req) => faults.push(req.trajId) });
    assert.deepEqual(faults.sort(), ["t1", "t2", "t3", "t4", "t5"], "each faulty episode reported once, at its first step");
    assert.deepEqual(
      trajs.map((t) => t.trajId),
      ["t0", "t6"],
    );
    assert.ok(trajs[0].truncated && trajs[0].steps.length === 2, "an agent that never answers is still scored: cut by the step budget");
    assert.ok(trajs[1].success && trajs[1].steps.length === 1);
  });

  test("a rollout worker excludes the whole group of an episode the server answered 500, and counts it", async () => {
    const env = await openHttp({ url, timeoutMs: 2000, retries: 0 });
    const tokenizer = new Tokenizer(env.vocabulary());
    const spec = parseJob(
      {
        apiVersion: "steppo.dev/v1alpha1",
        kind: "StepPOJob",
        metadata: { name: "w" },
        spec: { environment: { name: "http", maxSteps: 2 }, rollout: { groupSize: 2, episodesPerUpdate: 4 } },
      },
      "t",
    ).spec;
    const worker = new RolloutWorker("w0", env, tokenizer, spec, LOOP.contextLength, 1);
    const lines: string[] = [];
    worker.log = (l) => lines.push(l);
    // Row 0 (first episode of the first group) gets HTTP 500; every other episode answers and succeeds.
    const policy = wordPolicy(tokenizer, (_ctx, row) => [row === 0 ? "fail" : "done"]);
    const bus = new InMemoryBus();
    const published = await worker.produce(2, policy, 0, bus);
    assert.deepEqual(
      published.map((t) => t.groupId),
      ["w0.0.g2", "w0.0.g2"],
      "only the clean group",
    );
    assert.ok(published.every((t) => t.success));
    assert.deepEqual([worker.stats.envFaults, worker.stats.excludedForFaults, worker.stats.episodes], [1, 2, 2]);
    assert.ok(
      lines.some((l) => /group w0\.0\.g0 excluded from training: episode w0\.0\.e0: POST http:\/\/127\.0\.0\.1:\d+\/step: HTTP 500/.test(l)),
      lines.join("\n"),
    );
  });

  test("steppo run against a faulty server trains on: faulty groups are excluded, replaced, and counted in the summary", { timeout: 300_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), "steppo-faults-"));
    const job = parseJob(
      {
        apiVersion: "steppo.dev/v1alpha1",
        kind: "StepPOJob",
        metadata: { name: "faulty" },
        spec: {
          seed: 3,
          algorithm: { estimator: "grpo", epochs: 1, minibatchSteps: 4, criticWarmup: { episodes: 0 } },
          model: { dModel: 16, layers: 1, heads: 2, contextLength: 64 },
          environment: { name: "http", config: { url, timeoutMs: 300, retries: 0 }, maxSteps: 2, maxStepTokens: 4 },
          warmup: { enabled: false },
          rollout: { episodesPerUpdate: 4, groupSize: 2 },
          learner: { backend: "cpu" },
          training: { updates: 2, evalEvery: 100, evalEpisodes: 2 },
        },
      },
      "faulty.yaml",
    );
    const summary = await runJob(job, { runDir: join(root, "run"), log: () => {} });
    assert.equal(summary.updates, 2);
    // The untrained policy writes random words; most are the server's failure commands.
    assert.ok((summary.excluded?.envFaults ?? 0) > 0, JSON.stringify(summary.excluded));
    assert.equal((summary.excluded?.envFaults ?? 0) % 2, 0, "whole groups of 2");
  });

  test("/reset is retried a bounded number of times, then fails naming the URL and the cause", async () => {
    const env = await openHttp({ url, timeoutMs: 500, retries: 2 });
    const task = env.sampleTask(new Rng(1), "train");
    m.resets = 0;
    m.resetFailures = 2;
    await env.start(task);
    assert.equal(m.resets, 3, "two failures, then success");
    m.resets = 0;
    m.resetFailures = Number.POSITIVE_INFINITY;
    await assert.rejects(env.start(task), (err: Error) => {
      assert.match(err.message, /^http environment: POST http:\/\/127\.0\.0\.1:\d+\/reset: HTTP 503 "\{\\"error\\":\\"warming up\\"\}" \(after 3 attempts\)$/);
      return true;
    });
    assert.equal(m.resets, 3);
    m.resets = 0;
    m.resetFailures = 0;
    m.resetRejects = true;
    await assert.rejects(env.start(task), /\/reset: HTTP 400 .*no such family/);
    assert.equal(m.resets, 1, "a 4xx is the request's fault: not retried");
    m.resetRejects = false;
  });

  test("/info that fails or is malformed stops the opening with the URL and the field", async () => {
    m.badInfo = true;
    await assert.rejects(
      openHttp({ url, retries: 0 }),
      /GET http:\/\/127\.0\.0\.1:\d+\/info: malformed reply: vocabulary\[1\]: expected a word \(a string without spaces\), got "two words"/,
    );
    m.badInfo = false;
    const gone = createServer();
    const goneUrl = await listen(gone);
    await close(gone);
    await assert.rejects(
      openHttp({ url: goneUrl, retries: 1 }),
      /^Error: http environment: GET http:\/\/127\.0\.0\.1:\d+\/info: connection failed \(ECONNREFUSED\) \(after 2 attempts\)$/,
    );
  });

  test("steppo run with a warm-up against a server without demonstrations stops before training, naming the setting", { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "steppo-http-nodemo-"));
    const jobFile = join(dir, "job.yaml");
    writeFileSync(
      jobFile,
      `apiVersion: steppo.dev/v1alpha1
kind: StepPOJob
metadata: { name: no-demos }
spec:
  model: { dModel: 16, layers: 1, heads: 2, contextLength: 64 }
  environment: { name: http, config: { url: "${url}" }, maxSteps: 2, maxStepTokens: 4 }
  warmup: { demonstrations: 4 }
  rollout: { episodesPerUpdate: 4 }
  training: { updates: 1, evalEpisodes: 2 }
`,
    );
    const out = await steppo(["run", jobFile, "--run-dir", join(dir, "run")]);
    assert.equal(out.status, 1, out.stderr);
    assert.match(out.stderr, /spec\.warmup\.enabled: the environment server at http:\/\/127\.0\.0\.1:\d+ offers no demonstrations/);
    const checkpoints = join(dir, "run", "checkpoints");
    assert.deepEqual(existsSync(checkpoints) ? readdirSync(checkpoints) : [], [], "nothing was trained");
    assert.ok(!existsSync(join(dir, "run", "summary.json")));
  });
});

// ---- the client does not leak its headers, nor fill its memory ---------------------------------------

/** A server that records each request's path and headers, then answers with `reply`. */
function recordingServer(reply: (req: IncomingMessage, res: ServerResponse) => void): {
  server: Server;
  seen: { url?: string; headers: IncomingMessage["headers"] }[];
} {
  const seen: { url?: string; headers: IncomingMessage["headers"] }[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url, headers: req.headers });
    reply(req, res);
  });
  return { server, seen };
}

describe("http environment client safety", () => {
  const TOKEN_VAR = "STEPPO_TEST_ENV_TOKEN";
  const TOKEN = "Bearer integration-secret";

  test("a redirect to another origin is not followed: the second server gets no request, the error names status and Location", async () => {
    const other = recordingServer((_req, res) => json(res, 200, { name: "other", vocabulary: ["x"], families: { train: ["f"] } }));
    const otherUrl = await listen(other.server);
    const first = recordingServer((req, res) => {
      res.writeHead(302, { location: `${otherUrl}${req.url}` });
      res.end();
    });
    const firstUrl = await listen(first.server);
    process.env[TOKEN_VAR] = TOKEN;
    try {
      await assert.rejects(openHttp({ url: firstUrl, retries: 2, headersFrom: [{ name: "Authorization", env: TOKEN_VAR }] }), (err: Error) => {
        assert.match(err.message, /GET http:\/\/127\.0\.0\.1:\d+\/info: HTTP 302 redirect to "http:\/\/127\.0\.0\.1:\d+\/info" not followed/);
        assert.ok(err.message.includes(`${otherUrl}/info`), err.message);
        assert.ok(!err.message.includes(TOKEN), "the header value is not in the message");
        return true;
      });
      assert.equal(first.seen.length, 1, "a redirect is not retried");
      assert.equal(first.seen[0].headers.authorization, TOKEN, "the header from headersFrom was sent to the configured server");
      assert.equal(other.seen.length, 0, "nothing reached the redirect's target");
    } finally {
      delete process.env[TOKEN_VAR];
      await close(first.server);
      await close(other.server);
    }
  });

  test("a reply larger than maxReplyBytes is refused without being read to its end", async () => {
    const LIMIT = 64 * 1024;
    const TOTAL = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let written = 0;
    let finished = false;
    // Streams TOTAL bytes without a Content-Length, as fast as the client reads, until the client hangs up.
    const streaming = recordingServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const pump = () => {
        while (written < TOTAL) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        finished = true;
        res.end();
      };
      res.on("close", () => res.removeAllListeners("drain"));
      pump();
    });
    const url = await listen(streaming.server);
    // Declares a huge Content-Length: refused from the header alone.
    const declared = recordingServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": String(TOTAL) });
      res.write("{");
    });
    const declaredUrl = await listen(declared.server);
    try {
      for (const u of [url, declaredUrl]) {
        await assert.rejects(openHttp({ url: u, retries: 2, maxReplyBytes: LIMIT }), (err: Error) => {
          assert.match(err.message, /GET http:\/\/127\.0\.0\.1:\d+\/info: the reply is larger than maxReplyBytes \(65536 bytes\)/);
          return true;
        });
      }
      assert.equal(streaming.seen.length, 1, "an oversized reply is not retried");
      assert.equal(declared.seen.length, 1);
      assert.ok(!finished, "the server never got to write the whole body");
      assert.ok(written < TOTAL / 4, `the server wrote ${written} of ${TOTAL} bytes before the client hung up`);
    } finally {
      await close(streaming.server);
      await close(declared.server);
    }
  });

  test("a URL with credentials is refused before any request, without echoing them", async () => {
    const s = recordingServer((_req, res) => json(res, 200, {}));
    const url = await listen(s.server);
    try {
      const withCreds = url.replace("http://", "http://user:hunter2@");
      await assert.rejects(openHttp({ url: withCreds }), (err: Error) => {
        assert.match(err.message, /spec\.environment\.config\.url: the URL must not contain credentials .*headersFrom/);
        assert.ok(!err.message.includes("hunter2"));
        return true;
      });
      assert.equal(s.seen.length, 0, "no request was made");
    } finally {
      await close(s.server);
    }
  });
});
