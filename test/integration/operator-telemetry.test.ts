// Operations against a REAL kube-apiserver: with an OTLP endpoint the operator's reconcile spans are exported
// (to a local OTLP/HTTP receiver standing in for a collector), and JSON logs carry level, time, component and job.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { makeLog } from "../../operator/log.ts";
import { startOperator } from "../../operator/operator.ts";
import { createJob, eventually, type Harness, jobPods, startHarness, setPodPhase } from "../support/operator-harness.ts";

let h: Harness;
let collector: Server;
const received: { path: string; body: string }[] = [];

describe("operator telemetry on a real kube-apiserver", () => {
  before(async () => {
    h = await startHarness();
    collector = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        received.push({ path: req.url ?? "", body });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
  });
  after(async () => {
    await new Promise<void>((r) => collector?.close(() => r()));
    await h?.stop();
  });

  test("reconcile spans reach the OTLP endpoint; JSON log lines name level, component and job", async () => {
    const lines: string[] = [];
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    const op = await startOperator({
      clients: h.clients,
      leaderElection: false,
      otlpEndpoint: endpoint,
      log: makeLog("json", "op-test", (l) => lines.push(l)),
      defaults: { image: "steppo:test", natsUrl: "nats://127.0.0.1:1" },
    });
    try {
      await createJob(h.clients, "traced", { rollout: { replicas: 1 } });
      await eventually("2 pods", async () => ((await jobPods(h.clients, "traced")).length === 2 ? true : undefined));
      // Playing the kubelet: once the learner runs, the operator watches its progress (NATS here is unreachable).
      await setPodPhase(h.clients, "traced-learner-0", "Running");
      await eventually("a progress-watch line about the job", async () =>
        lines.map((l) => JSON.parse(l)).find((l) => l.component === "progress-watch" && l.job === "default/traced"),
      );
    } finally {
      await op.stop(); // flushes the batched spans
    }
    const traces = received.filter((r) => r.path === "/v1/traces");
    assert.ok(traces.length > 0, "spans exported");
    const all = traces.map((t) => t.body).join("\n");
    assert.match(all, /"reconcile"/);
    assert.match(all, /default\/traced/);
    assert.match(all, /steppo-operator/);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of parsed) {
      assert.ok(typeof l.time === "string" && typeof l.level === "string" && typeof l.component === "string" && typeof l.msg === "string", JSON.stringify(l));
    }
    assert.ok(parsed.some((l) => l.component === "tracing" && /exporting spans/.test(String(l.msg))));
    assert.ok(parsed.some((l) => l.component === "controller" && /controller started/.test(String(l.msg))));
  });
});
