// Trajectories against a REAL nats-server whose max_payload is small (64 KiB): the bus publishes the
// compressed codec (version 2), so a compressible episode larger than max_payload as version 1 arrives intact;
// an episode that still does not fit is refused before sending, with its size and the server's max_payload;
// a version-1 payload already in the stream is still consumed.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { NatsTrajectoryConsumer } from "../../runtime/nats/trajectory-consumer.ts";
import { NatsTrajectoryPublisher } from "../../runtime/nats/trajectory-publisher.ts";
import { connectNats } from "../../runtime/nats/connection.ts";
import { jobNames, natsJobRef } from "../../core/nats-names.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import { encodeTrajectory, TrajectoryTooLargeError } from "../../core/trajectory-codec.ts";
import { NatsServer } from "../support/nats-server.ts";

const MAX_PAYLOAD = 64 * 1024;
let server: NatsServer;
const conns: NatsConnection[] = [];
const log = () => {};

async function conn(name: string): Promise<NatsConnection> {
  const nc = await connectNats({ servers: server.url, name, reconnectTimeWaitMs: 100, log });
  conns.push(nc);
  return nc;
}

/** One step with `tokens` context ids drawn by `id`: small ids compress well, random 32-bit ones do not. */
function traj(trajId: string, tokens: number, id: (k: number) => number): Trajectory {
  return {
    trajId,
    workerId: "w0",
    policyVersion: 0,
    taskId: "t",
    groupId: "g",
    family: "f",
    steps: [
      {
        contextIds: Int32Array.from({ length: tokens }, (_, k) => id(k)),
        actionIds: Int32Array.of(1, 2),
        logProbs: Float32Array.of(-0.5, -0.25),
        reward: 1,
        done: true,
        stateKey: "s",
      },
    ],
    truncated: false,
    success: true,
  };
}

const words = (k: number) => (k * 7919) % 500;
const noise = () => Math.floor(Math.random() * 2 ** 32) - 2 ** 31;

async function fetchOne(bus: NatsTrajectoryConsumer): Promise<Trajectory> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    const [d] = await bus.fetch(1, 1000);
    if (d) {
      await d.ack();
      return d.traj;
    }
  }
  throw new Error("no trajectory arrived within 10 s");
}

describe("trajectory payloads and the server's max_payload (real nats-server)", { timeout: 120_000 }, () => {
  let worker: NatsTrajectoryPublisher;
  let learner: NatsTrajectoryConsumer;
  const job = natsJobRef({ name: "payload" });

  before(async () => {
    server = await NatsServer.start({ extraConfig: `max_payload: ${MAX_PAYLOAD}` });
    worker = await NatsTrajectoryPublisher.open(await conn("worker"), { job, workerId: "w0", log });
    learner = await NatsTrajectoryConsumer.open(await conn("learner"), { job, log, consumer: { ackWaitMs: 5000 } });
  });
  after(async () => {
    await worker?.close();
    await learner?.close();
    for (const nc of conns) await nc.close().catch(() => {});
    await server?.stop();
  });

  it("a compressible episode above max_payload as version 1 is published compressed and arrives intact", async () => {
    const t = traj("big-but-compressible", 40_000, words);
    assert.ok(encodeTrajectory(t).byteLength > MAX_PAYLOAD, "too large uncompressed");
    await worker.publish(t);
    const got = await fetchOne(learner);
    assert.equal(got.trajId, t.trajId);
    assert.deepEqual([...got.steps[0].contextIds], [...t.steps[0].contextIds]);
  });

  it("an episode that does not fit even compressed is refused, naming its size and the server's max_payload; the bus stays usable", async () => {
    const t = traj("incompressible", 40_000, noise);
    await assert.rejects(worker.publish(t), (err: Error) => {
      assert.ok(err instanceof TrajectoryTooLargeError, String(err));
      assert.equal(err.maxPayload, MAX_PAYLOAD, "read from the server's INFO");
      assert.ok(err.bytes > MAX_PAYLOAD);
      assert.match(err.message, new RegExp(`trajectory incompressible is ${err.bytes} bytes .* max_payload of ${MAX_PAYLOAD} bytes`));
      return true;
    });
    await worker.publish(traj("small-after", 100, words));
    assert.equal((await fetchOne(learner)).trajId, "small-after");
  });

  it("a version-1 payload (published before compression) is still consumed", async () => {
    const t = traj("old-format", 1000, words);
    const nc = await conn("old-worker");
    await jetstream(nc).publish(jobNames(job).trajSubject("w0"), encodeTrajectory(t), { msgID: t.trajId });
    const got = await fetchOne(learner);
    assert.equal(got.trajId, "old-format");
    assert.deepEqual([...got.steps[0].contextIds], [...t.steps[0].contextIds]);
  });
});
