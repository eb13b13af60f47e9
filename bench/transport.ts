// Transport benchmark: step samples per second from rollout workers into the learner's buffer through the
// steppo path (trajectory codec, NatsTrajectoryPublisher publish with de-dup ids and PubAcks, the learner's bounded
// pulls as it issues them (runtime/intake.ts), decode, de-dup bookkeeping, confirmed acks), beside a raw JetStream publish/consume loop moving
// payloads of the same sizes over the same server in the same run (js.publish with PubAck, consumer
// fetch, ack; acks asynchronous in both, included in the time). The ratio steppo / raw is the share of raw throughput the codec and bookkeeping leave
// (target ≥ 0.8). Writes bench/results/transport.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AckPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { NatsTrajectoryConsumer } from "../runtime/nats/trajectory-consumer.ts";
import { NatsTrajectoryPublisher } from "../runtime/nats/trajectory-publisher.ts";
import { connectNats } from "../runtime/nats/connection.ts";
import { natsJobRef } from "../core/nats-names.ts";
import { Rng } from "../core/rng.ts";
import type { Trajectory } from "../core/trajectory.ts";
import { encodeTrajectory } from "../core/trajectory-codec.ts";
import { fetchCoalesced } from "../runtime/intake.ts";
import { NatsServer } from "../test/support/nats-server.ts";
import { runHeader } from "./support/run-header.ts";

const WORKERS = 4;
const TRAJECTORIES = Number(process.env.STEPPO_BENCH_TRAJECTORIES ?? 4000);
const ROUNDS = 5;
const FETCH = 256;

/** Shapes like the multihop-qa agent's: 1–5 steps, contexts of 40–116 tokens, 4–24 action tokens. */
function realisticTrajectory(rng: Rng, id: string, workerId: string): Trajectory {
  const steps = 1 + Math.floor(rng.next() * 5);
  return {
    trajId: id,
    workerId,
    policyVersion: 7,
    taskId: `task-${Math.floor(rng.next() * 1e6)}`,
    groupId: id,
    family: "bridge",
    steps: Array.from({ length: steps }, (_, t) => {
      const lc = 40 + Math.floor(rng.next() * 77);
      const la = 4 + Math.floor(rng.next() * 21);
      return {
        contextIds: Int32Array.from({ length: lc }, () => Math.floor(rng.next() * 400)),
        actionIds: Int32Array.from({ length: la }, () => Math.floor(rng.next() * 400)),
        logProbs: Float32Array.from({ length: la }, () => -rng.next() * 5),
        reward: t === steps - 1 ? 1 : 0,
        done: t === steps - 1,
        stateKey: `s${t}:${Math.floor(rng.next() * 1e6)}`,
      };
    }),
    truncated: false,
    success: rng.next() < 0.5,
  };
}

interface Rate {
  seconds: number;
  trajectoriesPerSecond: number;
  stepSamplesPerSecond: number;
  megabytesPerSecond: number;
}

interface Round {
  /** Until every trajectory is in the consumer's buffer. */
  buffer: Rate;
  /** Until every ack is done as well (confirmed by the server on the steppo path). */
  total: Rate;
}

function rate(seconds: number, trajs: number, steps: number, bytes: number): Rate {
  return { seconds, trajectoriesPerSecond: trajs / seconds, stepSamplesPerSecond: steps / seconds, megabytesPerSecond: bytes / seconds / 1e6 };
}

/** Splits `items` over the workers round-robin. */
function shards<T>(items: T[]): T[][] {
  return Array.from({ length: WORKERS }, (_, w) => items.filter((_, i) => i % WORKERS === w));
}

async function steppoRound(url: string, jobName: string, trajs: Trajectory[], steps: number, bytes: number): Promise<Round> {
  const conns: NatsConnection[] = await Promise.all(Array.from({ length: WORKERS + 1 }, (_, i) => connectNats({ servers: url, name: `b${i}`, log: () => {} })));
  const job = natsJobRef({ name: jobName });
  const learner = await NatsTrajectoryConsumer.open(conns[WORKERS], { job, consumer: { maxAckPending: 20_000 }, log: () => {} });
  const pubs = await Promise.all(conns.slice(0, WORKERS).map((nc, w) => NatsTrajectoryPublisher.open(nc, { job, workerId: `w${w}`, log: () => {} })));
  const buffer: Trajectory[] = [];
  const t0 = performance.now();
  const producing = shards(trajs).map(async (mine, w) => {
    for (const t of mine) await pubs[w].publish(t);
  });
  // As in the learner, acks are not on the path into the buffer: it acks in bulk once a checkpoint covers
  // the trajectories. Here they follow at once (confirmed by the server), timed separately.
  const held: Awaited<ReturnType<NatsTrajectoryConsumer["fetch"]>> = [];
  while (buffer.length < trajs.length) {
    const ds = await fetchCoalesced(learner, Math.min(FETCH, trajs.length - buffer.length), 1000);
    for (const d of ds) {
      buffer.push(d.traj);
      held.push(d);
    }
  }
  const tBuffer = (performance.now() - t0) / 1000;
  await Promise.all(producing);
  for (let i = 0; i < held.length; i += 1024) await Promise.all(held.slice(i, i + 1024).map((d) => d.ack()));
  const tTotal = (performance.now() - t0) / 1000;
  await learner.close();
  for (const nc of conns) await nc.close();
  return { buffer: rate(tBuffer, trajs.length, steps, bytes), total: rate(tTotal, trajs.length, steps, bytes) };
}

async function rawRound(url: string, stream: string, payloads: Uint8Array[], steps: number, bytes: number): Promise<Round> {
  const conns: NatsConnection[] = await Promise.all(Array.from({ length: WORKERS + 1 }, (_, i) => connectNats({ servers: url, name: `r${i}`, log: () => {} })));
  const jsm = await jetstreamManager(conns[WORKERS]);
  await jsm.streams.add({
    name: stream,
    subjects: [`${stream}.>`],
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.New,
    storage: StorageType.File,
    max_msgs: 100_000,
    duplicate_window: 120e9,
  });
  await jsm.consumers.add(stream, { durable_name: "c", ack_policy: AckPolicy.Explicit, max_ack_pending: 20_000 });
  const consumer = await jetstream(conns[WORKERS]).consumers.get(stream, "c");
  const received: Uint8Array[] = [];
  const t0 = performance.now();
  const producing = shards(payloads.map((p, i) => ({ p, i }))).map(async (mine, w) => {
    const js = jetstream(conns[w]);
    for (const { p, i } of mine) await js.publish(`${stream}.w${w}`, p, { msgID: `m${i}` });
  });
  while (received.length < payloads.length) {
    const it = await consumer.fetch({ max_messages: Math.min(FETCH, payloads.length - received.length), expires: 1000 });
    for await (const m of it) {
      received.push(m.data);
      m.ack();
    }
  }
  const tBuffer = (performance.now() - t0) / 1000;
  await Promise.all(producing);
  await conns[WORKERS].flush();
  const tTotal = (performance.now() - t0) / 1000;
  for (const nc of conns) await nc.close();
  return { buffer: rate(tBuffer, payloads.length, steps, bytes), total: rate(tTotal, payloads.length, steps, bytes) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function main(): Promise<void> {
  const server = await NatsServer.start({ extraConfig: "max_payload: 8MB" });
  try {
    const rng = new Rng(42);
    const trajs = Array.from({ length: TRAJECTORIES }, (_, i) => realisticTrajectory(rng, `t${i}`, `w${i % WORKERS}`));
    const payloads = trajs.map((t) => encodeTrajectory(t));
    const steps = trajs.reduce((n, t) => n + t.steps.length, 0);
    const bytes = payloads.reduce((n, p) => n + p.byteLength, 0);
    const raw: Round[] = [];
    const steppo: Round[] = [];
    for (let r = -1; r < ROUNDS; r++) {
      // Fresh ids each round so nothing is suppressed as a duplicate; alternate which goes first; round -1 warms up.
      const round = trajs.map((t) => ({ ...t, trajId: `${t.trajId}-r${r + 1}` }));
      const a = await rawRound(server.url, `raw${r + 1}`, payloads, steps, bytes);
      const b = await steppoRound(server.url, `bench-r${r + 1}`, round, steps, bytes);
      if (r < 0) continue;
      raw.push(a);
      steppo.push(b);
      process.stderr.write(
        `  round ${r + 1}: into the buffer raw ${a.buffer.stepSamplesPerSecond.toFixed(0)}, steppo ${b.buffer.stepSamplesPerSecond.toFixed(0)} step samples/s; ` +
          `acks included raw ${a.total.stepSamplesPerSecond.toFixed(0)}, steppo ${b.total.stepSamplesPerSecond.toFixed(0)}\n`,
      );
    }
    const med = (rs: Round[], k: keyof Round) => median(rs.map((x) => x[k].stepSamplesPerSecond));
    const result = {
      benchmark: "transport",
      description:
        "Step samples/s from 4 publishing workers into the learner's buffer. steppo: trajectory codec + NatsTrajectoryPublisher / NatsTrajectoryConsumer (publish with de-dup id and PubAck, bounded pulls coalesced as in the learner (runtime/intake.ts), decode, de-dup bookkeeping; acks confirmed by the server, sent after the buffer is full as the learner does after a checkpoint). raw: JetStream publish with PubAck and consumer fetch + ack of byte payloads of the same sizes. Same server, same process, same run; medians of rounds after a warm-up round.",
      ...runHeader(),
      workers: WORKERS,
      trajectories: TRAJECTORIES,
      stepSamples: steps,
      payloadBytes: { mean: Math.round(bytes / payloads.length), total: bytes },
      rounds: ROUNDS,
      raw: { stepSamplesPerSecond: Math.round(med(raw, "buffer")), withAcksStepSamplesPerSecond: Math.round(med(raw, "total")), rounds: raw },
      steppo: { stepSamplesPerSecond: Math.round(med(steppo, "buffer")), withAcksStepSamplesPerSecond: Math.round(med(steppo, "total")), rounds: steppo },
      ratio: Number((med(steppo, "buffer") / med(raw, "buffer")).toFixed(3)),
      ratioWithAcks: Number((med(steppo, "total") / med(raw, "total")).toFixed(3)),
      target: 0.8,
      meetsTarget: med(steppo, "buffer") / med(raw, "buffer") >= 0.8,
    };
    const out = join(dirname(fileURLToPath(import.meta.url)), "results", "transport.json");
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stderr.write(
      `  transport: raw ${result.raw.stepSamplesPerSecond} vs steppo ${result.steppo.stepSamplesPerSecond} step samples/s, ratio ${result.ratio} (with acks ${result.ratioWithAcks}) → ${out}\n`,
    );
  } finally {
    await server.dispose();
  }
}
