// The environment contract (test/support/environment-contract.ts) for the http environment, against the
// node reference server (examples/http-env/server.mjs) on a free port. What is specific to the http
// environment (the protocol, a misbehaving server, the client's safety) is in http-env.test.ts.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import type { Environment } from "../../envs/environment.ts";
import { openEnvironment } from "../../envs/registry.ts";
import { environmentContract } from "../support/environment-contract.ts";
import { freePort } from "../support/free-port.ts";
import { pollUntil } from "../support/poll.ts";

const SERVER = join(import.meta.dirname, "../../examples/http-env/server.mjs");

describe("http environment contract, against the node reference server", () => {
  let child: ChildProcess | undefined;
  let url = "";
  let stderr = "";

  before(async () => {
    const port = await freePort();
    child = spawn(process.execPath, [SERVER, "--port", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    url = `http://127.0.0.1:${port}`;
    await pollUntil(`the reference server on ${url}/info`, 15_000, async () => {
      if (child?.exitCode !== null) throw new Error(`the reference server exited with code ${child?.exitCode}: ${stderr}`);
      return (await fetch(`${url}/info`)).ok || undefined;
    });
  });
  after(async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  });

  const makeEnv = (config: Record<string, unknown>, seed: number): Promise<Environment> =>
    openEnvironment({ name: "http", config: { url, timeoutMs: 5000, ...config }, maxSteps: 4, maxStepTokens: 10, bootstrapOnTruncation: false }, seed);

  environmentContract("http", makeEnv, {
    stepBudget: 4,
    maxContextWords: 96,
    // Shorter than a prompt plus the server's error note: the newest observation is cut to fit.
    boundedConfigs: [{ maxContextWords: 16 }],
    // The prompt arrives with /reset (the task carries none) and the reset observation is empty.
    goal: (_task, first) => first,
    tools: ["calc", "answer"],
    actionWords: [4, 7],
    minSuccess: { train: 1, test: 1, ood: 1 },
    // Every sub-optimal demonstration makes a mistake that ends in a wrong answer.
    suboptimalMargin: 0.9,
    suboptimalEnds: true,
    episodes: 60,
    // The server decides the tasks from (split, family, seed); the environment seed plays no part.
    seedMatters: false,
    malformedActions: [
      ["hello"],
      ["calc", "[", "1", "+", "]"],
      ["answer", "[", "]"],
      ["calc", "[", "40", "+", "40", "]"],
      ["answer", "[", "1", "]", "answer", "[", "2", "]"],
    ],
    configErrors: [
      [{ timeoutMs: 0 }, /spec\.environment\.config\.timeoutMs/],
      [{ retriess: 1 }, /spec\.environment\.config\.retriess: unknown key/],
      [{ url: "ftp://127.0.0.1:1" }, /spec\.environment\.config\.url/],
      [{ maxContextWords: 4 }, /spec\.environment\.config\.maxContextWords/],
    ],
  });
});
