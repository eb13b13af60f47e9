import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deflateRawSync } from "node:zlib";
import {
  CodecError,
  COMPRESSED_CODEC_VERSION,
  checkPayloadSize,
  decodeTrajectory,
  encodeTrajectory,
  encodeTrajectoryCompressed,
  MAX_INFLATED_BYTES,
  TRAJECTORY_CODEC_VERSION,
  TrajectoryTooLargeError,
} from "../../core/trajectory-codec.ts";
import type { StepRecord, Trajectory } from "../../core/trajectory.ts";

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomTraj(seed: number, opts: { truncated?: boolean } = {}): Trajectory {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const ids = (n: number) => Int32Array.from({ length: n }, () => int(2 ** 32) - 2 ** 31);
  const steps: StepRecord[] = [];
  const nSteps = 1 + int(5);
  for (let i = 0; i < nSteps; i++) {
    const L = int(20);
    steps.push({
      contextIds: ids(int(60)),
      actionIds: ids(L),
      logProbs: Float32Array.from({ length: L }, () => -r() * 20),
      reward: i === nSteps - 1 ? r() : 0,
      done: i === nSteps - 1 && !opts.truncated,
      stateKey: `state-${seed}-${i}-é中🙂`,
    });
  }
  const truncated = opts.truncated ?? false;
  return {
    trajId: `traj-${seed}`,
    workerId: `worker-${int(8)}`,
    policyVersion: int(1000),
    taskId: `task-${int(100)}`,
    groupId: `group-${int(10)}`,
    family: "search-qa",
    steps,
    truncated,
    ...(truncated ? { bootstrapContextIds: ids(30) } : {}),
    success: r() < 0.5,
  };
}

function bits(a: Float32Array | Int32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function assertSameTraj(a: Trajectory, b: Trajectory): void {
  const { steps: sa, bootstrapContextIds: ba, ...ra } = a;
  const { steps: sb, bootstrapContextIds: bb, ...rb } = b;
  assert.deepEqual(rb, ra);
  assert.equal(sb.length, sa.length);
  sa.forEach((s, i) => {
    const t = sb[i];
    assert.ok(t.contextIds instanceof Int32Array && t.actionIds instanceof Int32Array && t.logProbs instanceof Float32Array);
    assert.deepEqual(bits(t.contextIds), bits(s.contextIds));
    assert.deepEqual(bits(t.actionIds), bits(s.actionIds));
    assert.deepEqual(bits(t.logProbs), bits(s.logProbs), "log-probs bit-exact");
    assert.ok(Object.is(t.reward, s.reward));
    assert.equal(t.done, s.done);
    assert.equal(t.stateKey, s.stateKey);
  });
  if (ba === undefined) assert.equal(bb, undefined);
  else assert.deepEqual(bits(bb!), bits(ba));
}

function expectCodecError(bytes: Uint8Array, kind?: CodecError["kind"]): CodecError {
  try {
    decodeTrajectory(bytes);
  } catch (err) {
    assert.ok(err instanceof CodecError, `expected CodecError, got ${err}`);
    if (kind) assert.equal(err.kind, kind, err.message);
    return err;
  }
  assert.fail("decode should have thrown");
}

describe("trajectory codec", () => {
  it("round-trips exactly, including truncated episodes with a bootstrap context", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const t = randomTraj(seed, { truncated: seed % 3 === 0 });
      const bytes = encodeTrajectory(t);
      assert.equal(bytes[2], TRAJECTORY_CODEC_VERSION);
      assertSameTraj(decodeTrajectory(bytes), t);
    }
  });

  it("keeps special floats, negative versions, empty arrays and unaligned input views", () => {
    const t: Trajectory = {
      trajId: "",
      workerId: "w",
      policyVersion: -1,
      taskId: "t",
      groupId: "g",
      family: "f",
      steps: [
        {
          contextIds: new Int32Array(0),
          actionIds: Int32Array.from([2147483647, -2147483648, 0]),
          logProbs: Float32Array.from([-0, Number.NEGATIVE_INFINITY, 3.4e38]),
          reward: -0,
          done: false,
          stateKey: "",
        },
      ],
      truncated: true,
      bootstrapContextIds: new Int32Array(0),
      success: false,
    };
    const bytes = encodeTrajectory(t);
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    assertSameTraj(decodeTrajectory(shifted.subarray(1)), t);
    // Sub-views of typed arrays encode only their window.
    const big = Int32Array.from([9, 1, 2, 9]);
    const t2 = { ...t, steps: [{ ...t.steps[0], contextIds: big.subarray(1, 3) }] };
    assert.deepEqual(Array.from(decodeTrajectory(encodeTrajectory(t2)).steps[0].contextIds), [1, 2]);
  });

  it("is compact: about 4 bytes per context token and 8 per action token", () => {
    const t = randomTraj(7);
    let tokens = 0;
    for (const s of t.steps) tokens += 4 * s.contextIds.length + 8 * s.actionIds.length;
    assert.ok(encodeTrajectory(t).byteLength < tokens + 200);
  });

  it("rejects invalid input on encode", () => {
    const t = randomTraj(3);
    assert.throws(() => encodeTrajectory({ ...t, steps: [{ ...t.steps[0], logProbs: new Float32Array(t.steps[0].actionIds.length + 1) }] }), RangeError);
    assert.throws(() => encodeTrajectory({ ...t, policyVersion: 1.5 }), RangeError);
  });

  it("classifies every error kind", () => {
    const bytes = encodeTrajectory(randomTraj(5));
    const v3 = bytes.slice();
    v3[2] = 3;
    assert.match(expectCodecError(v3, "unknown-version").message, /wire version 3, this build reads versions 1 and 2/);
    expectCodecError(new Uint8Array(0), "truncated");
    expectCodecError(bytes.subarray(0, 2), "truncated");
    expectCodecError(bytes.subarray(0, bytes.length - 1), "truncated");
    expectCodecError(new TextEncoder().encode('{"trajId":"x"}'), "malformed");
    const trailing = new Uint8Array(bytes.length + 1);
    trailing.set(bytes);
    expectCodecError(trailing, "malformed");
    const badFlags = bytes.slice();
    badFlags[3] |= 0x80;
    expectCodecError(badFlags, "malformed");
    // Invalid UTF-8 inside trajId: header(3) flags(1) policyVersion varint, then the trajId length.
    const t = { ...randomTraj(6), trajId: "ab", policyVersion: 1 };
    const badUtf8 = encodeTrajectory(t);
    assert.equal(badUtf8[5], 2);
    badUtf8[6] = 0xff;
    expectCodecError(badUtf8, "malformed");
  });

  it("fuzz: truncations always throw CodecError(truncated); byte flips throw only CodecError", () => {
    const r = rng(1234);
    let flipsRejected = 0;
    for (let i = 0; i < 400; i++) {
      const bytes = encodeTrajectory(randomTraj(100 + (i % 25), { truncated: i % 2 === 0 }));
      const cut = Math.floor(r() * bytes.length);
      expectCodecError(bytes.subarray(0, cut), "truncated");
      const flipped = bytes.slice();
      const nFlips = 1 + Math.floor(r() * 4);
      for (let k = 0; k < nFlips; k++) flipped[Math.floor(r() * flipped.length)] ^= 1 + Math.floor(r() * 255);
      try {
        decodeTrajectory(flipped); // a flip inside a payload still decodes: fine, as long as nothing else is thrown
      } catch (err) {
        assert.ok(err instanceof CodecError, `byte flip threw ${err}`);
        flipsRejected++;
      }
    }
    assert.ok(flipsRejected > 0);
  });

  it("version 2 is the version-1 message compressed: exact round trip; version-1 payloads still decode", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const t = randomTraj(seed, { truncated: seed % 2 === 0 });
      const v2 = encodeTrajectoryCompressed(t);
      assert.deepEqual([...v2.subarray(0, 3)], [0x53, 0x50, COMPRESSED_CODEC_VERSION]);
      assertSameTraj(decodeTrajectory(v2), t);
      assertSameTraj(decodeTrajectory(encodeTrajectory(t)), t);
    }
  });

  it("an 8-step episode with ~30 KB observations (over 1 MiB as version 1) fits a 1 MiB max_payload compressed", () => {
    const r = rng(99);
    const word = () => Math.floor(r() * 2000); // a vocabulary of 2000 words
    const steps: StepRecord[] = [];
    let context: number[] = Array.from({ length: 33_000 }, word); // a full context window from the first step
    for (let i = 0; i < 8; i++) {
      context = [...context, ...Array.from({ length: 30_000 / 6 }, word)]; // ~30 KB of text, ~6 bytes a word
      steps.push({
        contextIds: Int32Array.from(context.slice(-33_000)),
        actionIds: Int32Array.from({ length: 20 }, word),
        logProbs: Float32Array.from({ length: 20 }, () => -r() * 5),
        reward: 0,
        done: i === 7,
        stateKey: `s${i}`,
      });
    }
    const t: Trajectory = { trajId: "big", workerId: "w", policyVersion: 3, taskId: "t", groupId: "g", family: "f", steps, truncated: false, success: false };
    const MiB = 1024 * 1024;
    assert.ok(encodeTrajectory(t).byteLength > MiB, `version 1: ${encodeTrajectory(t).byteLength} bytes`);
    const v2 = encodeTrajectoryCompressed(t);
    assert.doesNotThrow(() => checkPayloadSize("big", v2, MiB), `version 2: ${v2.byteLength} bytes`);
    assertSameTraj(decodeTrajectory(v2), t);
  });

  it("the size check names the size and the server's max_payload", () => {
    const payload = new Uint8Array(1000);
    assert.doesNotThrow(() => checkPayloadSize("t", payload, 1256));
    assert.throws(
      () => checkPayloadSize("t-1", payload, 1255),
      (err: Error) =>
        err instanceof TrajectoryTooLargeError &&
        err.bytes === 1256 &&
        err.maxPayload === 1255 &&
        err.message.startsWith("trajectory t-1 is 1256 bytes compressed (with headers), above the NATS server's max_payload of 1255 bytes"),
    );
  });

  it("a compressed payload is bounded when inflated, and a broken one is a CodecError", () => {
    const bomb = deflateRawSync(new Uint8Array(MAX_INFLATED_BYTES + 1));
    const v2 = new Uint8Array(3 + bomb.byteLength);
    v2.set([0x53, 0x50, 2]);
    v2.set(bomb, 3);
    assert.match(expectCodecError(v2, "malformed").message, /inflates to more than/);
    const good = encodeTrajectoryCompressed(randomTraj(3));
    expectCodecError(good.subarray(0, good.length - 4));
    expectCodecError(Uint8Array.of(0x53, 0x50, 2, 0xff, 0xff));
    // A compressed payload must hold a version-1 message, not another compressed one.
    const nested = deflateRawSync(good);
    const twice = new Uint8Array(3 + nested.byteLength);
    twice.set([0x53, 0x50, 2]);
    twice.set(nested, 3);
    expectCodecError(twice, "malformed");
  });
});
