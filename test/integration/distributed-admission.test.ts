// The admission counter (staleness bound) on a real KV bucket: concurrent workers never exceed the
// capacity, settled/abandoned tickets are accounted, a silent worker's tickets are reclaimed, and a
// reclaimed-but-alive worker re-registers its running episodes.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { NatsConnection } from "@nats-io/transport-node";
import { AdmissionKV, AdmissionSupervisor, admissionCapacity, admittedCount, WorkerAdmission } from "../../runtime/nats/admission.ts";
import { connectNats } from "../../runtime/nats/connection.ts";
import { natsJobRef } from "../../core/nats-names.ts";
import { JobStateKV } from "../../runtime/nats/weights.ts";
import { NatsServer } from "../support/nats-server.ts";

let server: NatsServer;
const conns: NatsConnection[] = [];

async function store(job: string): Promise<AdmissionKV> {
  const nc = await connectNats({ servers: server.url, name: `adm-${conns.length}`, log: () => {} });
  conns.push(nc);
  return new AdmissionKV((await JobStateKV.open(nc, { job: natsJobRef({ name: job }) })).kv);
}

describe("admission control on a real KV", { timeout: 60_000 }, () => {
  before(async () => {
    server = await NatsServer.start();
  });
  after(async () => {
    for (const nc of conns) await nc.close().catch(() => {});
    await server?.dispose();
  });

  it("capacity is (maxPolicyLag + version + 1) × batch", () => {
    assert.equal(admissionCapacity(0, 0, 8), 8);
    assert.equal(admissionCapacity(3, 2, 8), 48);
    assert.equal(admissionCapacity(-1, 1, 8), 16);
  });

  it("concurrent workers (separate connections) never take more than the capacity", async () => {
    const workers = await Promise.all(Array.from({ length: 6 }, async (_, i) => new WorkerAdmission(await store("adm-race"), `w${i}`)));
    const cap = admissionCapacity(0, 1, 10); // 20
    const granted = await Promise.all(workers.map(async (w) => (await w.acquire(6, 2, cap)) + (await w.acquire(6, 2, cap))));
    const total = granted.reduce((a, b) => a + b, 0);
    assert.equal(total, 20, `granted ${granted.join(", ")}`);
    assert.ok(
      granted.every((g) => g % 2 === 0),
      "whole groups only",
    );
    const { state } = await (await store("adm-race")).read();
    assert.equal(admittedCount(state), 20);
    // Abandoned tickets come back; published ones stay admitted.
    const k = granted.findIndex((g) => g >= 2);
    await workers[k].settle(granted[k] - 2, 2);
    assert.equal(admittedCount((await (await store("adm-race")).read()).state), 18);
  });

  it("the learner reclaims a silent worker's running tickets; a live one re-registers; stale drops return tickets", async () => {
    const sup = new AdmissionSupervisor(await store("adm-reclaim"), 300);
    const dead = new WorkerAdmission(await store("adm-reclaim"), "dead");
    const slow = new WorkerAdmission(await store("adm-reclaim"), "slow");
    assert.equal(await dead.acquire(4, 1, 8), 4);
    assert.equal(await slow.acquire(4, 1, 8), 4);
    await dead.settle(1, 0); // published 1, 3 still running when it "dies"
    assert.equal(await slow.acquire(1, 1, 8), 0, "full");
    await sup.reclaim();
    await new Promise((r) => setTimeout(r, 400));
    const r = await sup.reclaim();
    assert.deepEqual(r.reclaimed.map((x) => [x.id, x.running]).sort(), [
      ["dead", 3],
      ["slow", 4],
    ]);
    const kv = await store("adm-reclaim");
    assert.equal(admittedCount((await kv.read()).state), 1, "only the published episode stays admitted");
    // "slow" was alive after all: its next write re-registers its 4 running episodes.
    await slow.heartbeat();
    assert.equal(slow.reclaimedTimes, 1);
    assert.equal(admittedCount((await kv.read()).state), 5);
    await sup.returnStale(2);
    await sup.returnStale(2); // idempotent
    assert.equal(admittedCount((await kv.read()).state), 3);
    await slow.settle(4, 0);
    await slow.leave();
    const final = (await kv.read()).state;
    assert.deepEqual(Object.keys(final.holders), []);
    assert.equal(admittedCount(final), 3);
    await sup.resetForNewRun(7);
    assert.equal(admittedCount((await kv.read()).state), 7);
  });
});
