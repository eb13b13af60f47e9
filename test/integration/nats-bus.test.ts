// The NATS transport against a REAL nats-server (started on a free loopback port with its own store dir).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { DLQ_HEADERS } from "../../runtime/nats/dead-letters.ts";
import { type ConsumerOptions, NatsTrajectoryConsumer } from "../../runtime/nats/trajectory-consumer.ts";
import { NatsTrajectoryPublisher, type PublisherOptions } from "../../runtime/nats/trajectory-publisher.ts";
import { connectNats } from "../../runtime/nats/connection.ts";
import { jobNames, natsJobRef, sanitizeName } from "../../core/nats-names.ts";
import { JobStateKV, NatsWeightStore } from "../../runtime/nats/weights.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import { decodeTrajectory, encodeTrajectory } from "../../core/trajectory-codec.ts";
import { NatsServer } from "../support/nats-server.ts";
import { notYet, pollUntil } from "../support/poll.ts";

let server: NatsServer;
const conns: NatsConnection[] = [];
const logs: string[] = [];
const log = (line: string) => logs.push(line);

async function conn(name: string): Promise<NatsConnection> {
  const nc = await connectNats({ servers: server.url, name, reconnectTimeWaitMs: 100, log });
  conns.push(nc);
  return nc;
}

function traj(id: string, workerId = "w0", policyVersion = 0): Trajectory {
  const n = 1 + (id.length % 3);
  return {
    trajId: id,
    workerId,
    policyVersion,
    taskId: `task-${id}`,
    groupId: "g",
    family: "test",
    steps: Array.from({ length: n }, (_, i) => ({
      contextIds: Int32Array.from({ length: 50 }, (_, k) => k + i),
      actionIds: Int32Array.from([i, 7, 9]),
      logProbs: Float32Array.from([-0.1, -0.2, -0.3 - i]),
      reward: i === n - 1 ? 1 : 0,
      done: i === n - 1,
      stateKey: `s${i}`,
    })),
    truncated: false,
    success: true,
  };
}

async function openPair(job: string, extra: Partial<PublisherOptions & ConsumerOptions> = {}) {
  const worker = await NatsTrajectoryPublisher.open(await conn(`worker-${job}`), { job: natsJobRef({ name: job }), workerId: "w0", log, ...extra });
  const learner = await NatsTrajectoryConsumer.open(await conn(`learner-${job}`), {
    job: natsJobRef({ name: job }),
    log,
    consumer: { ackWaitMs: 1000 },
    ...extra,
  });
  return { worker, learner };
}

/** Fetches until `n` deliveries arrived or `timeoutMs` passed. */
async function fetchN(bus: NatsTrajectoryConsumer, n: number, timeoutMs: number, ack = true) {
  const got: Awaited<ReturnType<NatsTrajectoryConsumer["fetch"]>> = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < n && Date.now() < deadline) {
    const ds = await bus.fetch(n - got.length, Math.min(1000, Math.max(1, deadline - Date.now())));
    if (ack) await Promise.all(ds.map((d) => d.ack()));
    got.push(...ds);
  }
  return got;
}

describe("NATS transport (real nats-server)", { timeout: 120_000 }, () => {
  before(async () => {
    server = await NatsServer.start();
  });

  after(async () => {
    for (const nc of conns) await nc.close().catch(() => {});
    await server?.dispose();
  });

  it("names are per job and sanitised", () => {
    const n = jobNames(natsJobRef({ name: "my-job" }));
    assert.equal(n.trajSubject("pod-1"), "steppo.default_my-job.traj.pod-1");
    assert.equal(n.dlqSubject, "steppo.default_my-job.dlq");
    assert.notEqual(sanitizeName("a.b"), sanitizeName("a_b"));
    assert.match(jobNames({ namespace: "team", name: "job.v2 x" }).trajStream, /^steppo-[A-Za-z0-9_-]+-traj$/);
  });

  it("publish → fetch → ack round trip, exact trajectories, nothing left in the stream", async () => {
    const { worker, learner } = await openPair("roundtrip");
    const sent = Array.from({ length: 5 }, (_, i) => traj(`rt-${i}`, `w${i % 2}`, i));
    for (const t of sent) await worker.publish(t);
    const got = await fetchN(learner, 5, 5000);
    assert.equal(got.length, 5);
    const byId = new Map(got.map((d) => [d.traj.trajId, d]));
    for (const t of sent) {
      const d = byId.get(t.trajId)!;
      assert.equal(d.redeliveries, 0);
      assert.deepEqual(encodeTrajectory(d.traj), encodeTrajectory(t), "token-in/token-out: bit-exact");
      assert.equal(d.subject, `steppo.default_roundtrip.traj.${t.workerId}`);
    }
    assert.deepEqual(await learner.fetch(10, 0), [], "nothing more");
    const b = await learner.backlog();
    assert.deepEqual([b.pending, b.ackPending, b.streamMessages, b.lastSeq], [0, 0, 0, 5]);
    assert.equal(worker.stats().published, 5);
    const s = learner.stats();
    assert.deepEqual([s.consumed, s.acked, s.inFlight, s.duplicates, s.deadLettered], [5, 5, 0, 0, 0]);
    await worker.close();
    await learner.close();
  });

  it("duplicate publishes are suppressed (server window and consumer de-dup) and counted", async () => {
    const { worker, learner } = await openPair("dups");
    const t = traj("dup-1");
    await worker.publish(t);
    await worker.publish(t); // same trajId within the duplicate window: stored once
    assert.deepEqual([worker.stats().published, worker.stats().publishDuplicates], [1, 1]);
    // The same trajId under another message id (e.g. re-published after the window): consumer-side de-dup.
    const js = jetstream(await conn("raw-dups"));
    await js.publish(learner.names.trajSubject("w9"), encodeTrajectory(t), { msgID: "other-id" });
    const got = await fetchN(learner, 2, 1200);
    assert.equal(got.length, 1);
    assert.equal(got[0].traj.trajId, "dup-1");
    const s = learner.stats();
    assert.deepEqual([s.consumed, s.duplicates], [1, 1]);
    const b = await learner.backlog();
    assert.deepEqual([b.pending, b.ackPending, b.streamMessages], [0, 0, 0], "the suppressed duplicate was acked");
    await learner.close();
  });

  it("garbage and unknown-version messages are dead-lettered with their cause, acked, counted, logged once per kind", async () => {
    const { worker, learner } = await openPair("dlq");
    const nc = await conn("raw-dlq");
    const js = jetstream(nc);
    const subject = learner.names.trajSubject("evil");
    const future = encodeTrajectory(traj("future"));
    future[2] = 9;
    await js.publish(subject, new TextEncoder().encode("this is not a trajectory"));
    await js.publish(subject, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    await js.publish(subject, future);
    await worker.publish(traj("good-after-garbage"));
    const logStart = logs.length;
    const got = await fetchN(learner, 1, 5000);
    assert.deepEqual(
      got.map((d) => d.traj.trajId),
      ["good-after-garbage"],
      "the consumer keeps working",
    );
    const s = learner.stats();
    assert.equal(s.deadLettered, 3);
    assert.deepEqual(s.deadLetteredByKind, {
      malformed: 2,
      "unknown-version": 1,
      truncated: 0,
      "non-finite": 0,
      "token-out-of-range": 0,
      "too-long": 0,
      inconsistent: 0,
      "bad-policy-version": 0,
    });
    assert.equal(logs.slice(logStart).filter((l) => l.includes("dead-lettering")).length, 2, "logged once per kind");
    const b = await learner.backlog();
    assert.deepEqual([b.pending, b.ackPending, b.streamMessages], [0, 0, 0]);
    // The raw bytes are readable on the dead-letter subject (kept by the DLQ stream) with the cause in headers.
    const oc = await js.consumers.get(learner.names.dlqStream);
    const reasons: string[] = [];
    for await (const m of await oc.fetch({ max_messages: 3, expires: 2000 })) {
      assert.equal(m.subject, learner.names.dlqSubject);
      assert.equal(m.headers?.get(DLQ_HEADERS.subject), subject);
      reasons.push(m.headers?.get(DLQ_HEADERS.reason) ?? "");
      if (reasons.length === 3) break;
    }
    assert.deepEqual(reasons, ["malformed", "malformed", "unknown-version"]);
    await learner.close();
  });

  it("a delivery refused at intake is dead-lettered with its cause and original bytes, acked, counted, not redelivered", async () => {
    const { worker, learner } = await openPair("refuse");
    const poison = traj("poison-nan");
    poison.steps[0].reward = Number.NaN;
    await worker.publish(poison);
    await worker.publish(traj("good-after-poison"));
    const got = await fetchN(learner, 2, 5000, false);
    assert.deepEqual(
      got.map((d) => d.traj.trajId),
      ["poison-nan", "good-after-poison"],
    );
    await got[0].deadLetter("non-finite", "trajectory poison-nan: step 0: reward is NaN");
    await got[1].ack();
    const s = learner.stats();
    assert.equal(s.deadLettered, 1);
    assert.equal(s.deadLetteredByKind["non-finite"], 1);
    assert.equal(s.inFlight, 0);
    assert.equal(await learner.dlqLastSeq(), 1);
    const b = await learner.backlog();
    assert.deepEqual([b.pending, b.ackPending, b.streamMessages], [0, 0, 0], "acked: nothing left to redeliver");
    const m = await (await jetstream(await conn("raw-refuse")).consumers.get(learner.names.dlqStream)).next({ expires: 2000 });
    assert.ok(m, "the DLQ stream holds the refused trajectory");
    assert.equal(m.headers?.get(DLQ_HEADERS.reason), "non-finite");
    assert.match(m.headers?.get(DLQ_HEADERS.error) ?? "", /poison-nan: step 0: reward is NaN/);
    const back = decodeTrajectory(m.data);
    assert.equal(back.trajId, "poison-nan");
    assert.ok(Number.isNaN(back.steps[0].reward), "the payload is the message as published");
    await learner.close();
  });

  it("a deleted DLQ stream is recreated by the next dead-letter, and the dead-letter count continues", async () => {
    const { worker, learner } = await openPair("dlq-deleted");
    const nc = await conn("raw-dlq-deleted");
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const subject = learner.names.trajSubject("evil");
    await js.publish(subject, new TextEncoder().encode("garbage 1"));
    await worker.publish(traj("good-1"));
    await fetchN(learner, 1, 5000);
    assert.equal(await learner.dlqLastSeq(), 1);

    await jsm.streams.delete(learner.names.dlqStream);
    await js.publish(subject, new TextEncoder().encode("garbage 2"));
    await worker.publish(traj("good-2"));
    const got = await fetchN(learner, 1, 10_000);
    assert.deepEqual(
      got.map((d) => d.traj.trajId),
      ["good-2"],
      "dead-lettering went on past the missing stream",
    );
    const info = await jsm.streams.info(learner.names.dlqStream);
    assert.equal(info.state.messages, 1, "the recreated DLQ stream holds the new dead-letter");
    const m = await (await js.consumers.get(learner.names.dlqStream)).next({ expires: 2000 });
    assert.equal(new TextDecoder().decode(m?.data), "garbage 2");
    assert.equal(learner.stats().deadLettered, 2);
    assert.equal(await learner.dlqLastSeq(), 2, "the count carries over the deleted stream's sequence");

    // Deleted again, read by the accounting before any dead-letter: recreated, nothing lost from the count.
    await jsm.streams.delete(learner.names.dlqStream);
    assert.equal(await learner.dlqLastSeq(), 2);
    assert.equal((await jsm.streams.info(learner.names.dlqStream)).state.messages, 0);
    assert.ok(
      logs.some((l) => l.includes(`dead-letter stream ${learner.names.dlqStream} is missing`)),
      logs.join("\n"),
    );
    await learner.close();
  });

  it("a learner that dies holding unacked deliveries loses nothing: they are redelivered after ack_wait", async () => {
    const job = "redeliver";
    const worker = await NatsTrajectoryPublisher.open(await conn("w-redeliver"), { job: natsJobRef({ name: job }), log });
    for (let i = 0; i < 4; i++) await worker.publish(traj(`rd-${i}`));
    const ncA = await conn("learner-A");
    const a = await NatsTrajectoryConsumer.open(ncA, { job: natsJobRef({ name: job }), consumer: { ackWaitMs: 1000 }, log });
    const first = await fetchN(a, 4, 3000, false);
    assert.equal(first.length, 4);
    await first[0].ack();
    a.abandon(); // SIGKILL-like: no acks, no NAKs
    await ncA.close();

    const t0 = Date.now();
    const b = await NatsTrajectoryConsumer.open(await conn("learner-B"), {
      job: natsJobRef({ name: job }),
      consumer: { ackWaitMs: 1000 },
      log,
      alreadyConsumed: ["rd-0"],
    });
    const again = await fetchN(b, 3, 6000);
    assert.deepEqual(again.map((d) => d.traj.trajId).sort(), ["rd-1", "rd-2", "rd-3"]);
    assert.ok(again.every((d) => d.redeliveries >= 1));
    assert.ok(Date.now() - t0 >= 500, "came back only after ack_wait");
    assert.equal((await b.backlog()).streamMessages, 0);

    // Graceful close NAKs what it holds: redelivered at once, not after ack_wait.
    await worker.publish(traj("rd-4"));
    const held = await fetchN(b, 1, 3000, false);
    assert.equal(held.length, 1);
    await b.close();
    const c = await NatsTrajectoryConsumer.open(await conn("learner-C"), { job: natsJobRef({ name: job }), consumer: { ackWaitMs: 30_000 }, log });
    const t1 = Date.now();
    const back = await fetchN(c, 1, 3000);
    assert.deepEqual(
      back.map((d) => d.traj.trajId),
      ["rd-4"],
    );
    assert.ok(Date.now() - t1 < 2000);
    await c.close();
  });

  it("a live learner keeps its leases: no redelivery of held messages past ack_wait", async () => {
    const { worker, learner } = await openPair("leases");
    await worker.publish(traj("lease-1"));
    const [d] = await fetchN(learner, 1, 3000, false);
    await new Promise((r) => setTimeout(r, 2500)); // 2.5 × ack_wait, leases renewed every ack_wait/3
    assert.deepEqual(await learner.fetch(5, 200), []);
    assert.equal(learner.stats().duplicates, 0);
    await d.ack();
    assert.equal((await learner.backlog()).streamMessages, 0);
    await learner.close();
  });

  it("back-pressure: a full stream makes publish wait until the learner acks", async () => {
    // The worker creates the stream with defaults; the learner owns its configuration and lowers the limit.
    const job = "backpressure";
    const worker = await NatsTrajectoryPublisher.open(await conn("w-bp"), { job: natsJobRef({ name: job }), log });
    const learner = await NatsTrajectoryConsumer.open(await conn("l-bp"), { job: natsJobRef({ name: job }), stream: { maxMsgs: 3 }, log });
    for (let i = 0; i < 3; i++) await worker.publish(traj(`bp-${i}`));
    let done = false;
    const blocked = worker.publish(traj("bp-3")).then(() => {
      done = true;
    });
    // The positive signal first: the publisher has met the full stream (and is waiting on it).
    await pollUntil("the publisher to wait on the full stream", 5000, () => (worker.stats().backpressureWaits > 0 ? true : notYet(worker.stats())), 20);
    assert.equal(done, false, "publisher waits while the stream is full");
    const got = await fetchN(learner, 1, 2000);
    assert.equal(got.length, 1);
    await blocked;
    assert.equal(worker.stats().published, 4);
    assert.equal((await fetchN(learner, 3, 4000)).length, 3);
    await learner.close();
  });

  for (const mode of [
    { name: "graceful restart", job: "restart", hard: false, downMs: 0 },
    { name: "SIGKILL and 1 s down", job: "restart-hard", hard: true, downMs: 1000 },
  ]) {
    it(`survives a server restart mid-stream (${mode.name}): publisher and consumer continue, every trajectory consumed exactly once`, async () => {
      await restartScenario(mode);
    });
  }

  async function restartScenario(mode: { job: string; hard: boolean; downMs: number }) {
    const { worker, learner } = await openPair(mode.job);
    const N = 60;
    const consumed: string[] = [];
    let stop = false;
    const consumer = (async () => {
      while (!stop && consumed.length < N) {
        const ds = await learner.fetch(16, 500);
        for (const d of ds) {
          consumed.push(d.traj.trajId);
          await d.ack();
        }
      }
    })();
    const publisher = (async () => {
      for (let i = 0; i < N; i++) {
        await worker.publish(traj(`rs-${i}`, `w${i % 3}`));
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    while (consumed.length < N / 3) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await server.restart({ hard: mode.hard, downMs: mode.downMs });
    const downMs = Date.now() - t0;
    await publisher;
    // On a timeout the assertions below say what was missing.
    await pollUntil(`all ${N} consumed`, 20_000, () => (consumed.length >= N ? true : notYet(consumed.length)), 50).catch(() => {});
    stop = true;
    await consumer;
    assert.equal(new Set(consumed).size, N, `all ${N} consumed (got ${new Set(consumed).size})`);
    assert.equal(consumed.length, N, "none handed out twice");
    assert.equal(worker.stats().published, N);
    // An ack in flight when the server is SIGKILLed can be lost: that message stays ack-pending, is
    // redelivered after ack_wait, and must then be recognised as a duplicate (acked, never handed out
    // again). Keep the consumer fetching until the backlog drains.
    let b = await learner.backlog();
    const drainDeadline = Date.now() + 15_000;
    while ((b.pending || b.ackPending || b.streamMessages) && Date.now() < drainDeadline) {
      const again = await learner.fetch(16, 500);
      assert.deepEqual(
        again.map((d) => d.traj.trajId),
        [],
        "a redelivered trajectory is suppressed, not handed out twice",
      );
      b = await learner.backlog();
    }
    assert.deepEqual([b.pending, b.ackPending, b.streamMessages], [0, 0, 0]);
    console.log(`  ${mode.job}: server down ${downMs} ms; publisher retries ${worker.stats().publishRetries}, suppressed ${learner.stats().duplicates}`);
    await learner.close();
  }

  it("weight store: versions in the object store, latest in KV, old versions pruned", async () => {
    const nc = await conn("weights");
    const ws = await NatsWeightStore.open(nc, { job: natsJobRef({ name: "weights" }), keepVersions: 3 });
    assert.equal(await ws.latestVersion(), -1);
    assert.equal(await ws.get(0), undefined);
    const blobs = [0, 1, 2, 3, 4].map((v) => Uint8Array.from({ length: v === 4 ? 700_000 : 1000 + v }, (_, i) => (i * 31 + v) & 0xff));
    const seen: number[] = [];
    const stopWatch = await ws.watchLatest((v) => seen.push(v));
    for (let v = 0; v < blobs.length; v++) await ws.publish(v, blobs[v]);
    assert.equal(await ws.latestVersion(), 4);
    assert.deepEqual(await ws.get(4), blobs[4]);
    assert.deepEqual(await ws.get(2), blobs[2]);
    assert.equal(await ws.get(1), undefined, "pruned");
    assert.equal(await ws.get(99), undefined);
    await ws.publish(1, blobs[1]); // a late, older version never moves "latest" back
    assert.equal(await ws.latestVersion(), 4);
    const other = await NatsWeightStore.open(await conn("weights-2"), { job: natsJobRef({ name: "weights" }) });
    assert.equal(await other.latestVersion(), 4);
    assert.deepEqual(await other.get(3), blobs[3]);
    // The positive signal: a newer version, published after the late one, reaches the watch; the late one
    // never showed up in between.
    await ws.publish(5, blobs[0]);
    await pollUntil("the watch to see version 5", 5000, () => (seen.includes(5) ? true : notYet(seen)), 20).finally(stopWatch);
    assert.ok(seen.includes(4), JSON.stringify(seen));
    assert.ok(!seen.slice(seen.indexOf(4)).some((v) => v < 4), `latest moved back: ${JSON.stringify(seen)}`);
    assert.equal(seen.at(-1), 5);
  });

  it("job state KV: put/get/watch JSON values", async () => {
    const kv = await JobStateKV.open(await conn("kv"), { job: natsJobRef({ name: "kvjob" }) });
    assert.equal(await kv.get("learner.progress"), undefined);
    const values: unknown[] = [];
    const seen = (n: number) => pollUntil(`${n} watched value(s)`, 10_000, () => (values.length >= n ? true : notYet(values)), 20);
    // A watch starts with the key's current value: put first, and wait for the watch to report it, so the
    // later changes cannot race its start (two puts before it starts would show only the second).
    await kv.put("learner.progress", { update: 1, successRate: 0.5 });
    const stop = await kv.watch<{ update: number }>("learner.progress", (v) => values.push(v));
    await seen(1);
    await kv.put("learner.progress", { update: 2, successRate: 0.75 });
    assert.deepEqual(await kv.get("learner.progress"), { update: 2, successRate: 0.75 });
    await kv.delete("learner.progress");
    assert.equal(await kv.get("learner.progress"), undefined);
    await seen(3);
    stop();
    assert.deepEqual(values, [{ update: 1, successRate: 0.5 }, { update: 2, successRate: 0.75 }, undefined]);
    const jsm = await jetstreamManager(await conn("kv-check"));
    assert.ok((await jsm.streams.info("KV_steppo-default_kvjob")).config.name);
  });
});
