// Compact binary wire format of a Trajectory (what rollout workers publish and the learner consumes).
// Token-in/token-out: token ids and behaviour log-probs travel as raw little-endian Int32/Float32 arrays,
// bit-exact, never re-tokenised.
//
// Layout, version 1 (all integers little-endian; "uvar" = unsigned LEB128 varint, at most 2^53 - 1):
//   magic        2 bytes  0x53 0x50 ("SP")
//   version      u8       1
//   flags        u8       bit0 truncated, bit1 success, bit2 has bootstrapContextIds; other bits 0
//   policyVersion svar    zigzag varint (a safe integer)
//   trajId, workerId, taskId, groupId, family: str (uvar byte length + UTF-8)
//   stepCount    uvar
//   per step:    u8 flags (bit0 done; other bits 0), f64 reward, str stateKey,
//                uvar Lc, Lc × i32 contextIds, uvar L, L × i32 actionIds, L × f32 logProbs
//   [bootstrap]  uvar n, n × i32 (only when flag bit2)
// The message must end exactly after the last field; anything left over is "malformed".
//
// Version 2 (what the NATS bus publishes) is a version-1 message compressed: magic, the version byte 2,
// then the whole version-1 message as raw DEFLATE (RFC 1951). Observations repeat and token ids are small,
// so episodes that exceed the server's max_payload as version 1 usually fit; decodeTrajectory reads both
// versions, so payloads already in a stream stay readable.
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type { StepRecord, Trajectory } from "./trajectory.ts";

export const TRAJECTORY_CODEC_VERSION = 1;
export const COMPRESSED_CODEC_VERSION = 2;
/** Largest version-1 message a compressed payload may inflate to (a small payload must not expand without bound). */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;
const MAGIC0 = 0x53;
const MAGIC1 = 0x50;
const HEADER_BYTES = 3;

const F_TRUNCATED = 1;
const F_SUCCESS = 2;
const F_BOOTSTRAP = 4;
const S_DONE = 1;

export type CodecErrorKind = "unknown-version" | "truncated" | "malformed";

export class CodecError extends Error {
  constructor(
    readonly kind: CodecErrorKind,
    message: string,
  ) {
    super(`trajectory codec (${kind}): ${message}`);
    this.name = "CodecError";
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

function uvarSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function checkSafeInt(n: number, what: string, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`encodeTrajectory: ${what} must be a safe integer >= ${min}, got ${n}`);
}

class Writer {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  pos = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(v: number): void {
    this.bytes[this.pos++] = v;
  }

  uvar(n: number): void {
    while (n >= 0x80) {
      this.bytes[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.bytes[this.pos++] = n;
  }

  f64(v: number): void {
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  raw(b: Uint8Array): void {
    this.bytes.set(b, this.pos);
    this.pos += b.byteLength;
  }

  /** 4-byte elements, copied as little-endian. */
  array32(a: Int32Array | Float32Array): void {
    if (LITTLE_ENDIAN) {
      this.raw(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      return;
    }
    const isInt = a instanceof Int32Array;
    for (let i = 0; i < a.length; i++) {
      if (isInt) this.view.setInt32(this.pos, a[i], true);
      else this.view.setFloat32(this.pos, a[i], true);
      this.pos += 4;
    }
  }
}

/** Encodes a trajectory in the compact binary format (version 1). Throws RangeError/TypeError on invalid input. */
export function encodeTrajectory(t: Trajectory): Uint8Array {
  const strings = [t.trajId, t.workerId, t.taskId, t.groupId, t.family].map((s, i) => {
    if (typeof s !== "string") throw new TypeError(`encodeTrajectory: string field #${i} is ${typeof s}`);
    return utf8.encode(s);
  });
  checkSafeInt(t.policyVersion, "policyVersion", Number.MIN_SAFE_INTEGER);
  if (t.policyVersion < -(2 ** 51) || t.policyVersion > 2 ** 51) throw new RangeError(`encodeTrajectory: policyVersion out of range: ${t.policyVersion}`);
  const stateKeys: Uint8Array[] = [];
  let size = HEADER_BYTES + 1 + uvarSize(zigzag(t.policyVersion)) + uvarSize(t.steps.length);
  for (const s of strings) size += uvarSize(s.byteLength) + s.byteLength;
  for (const step of t.steps) {
    if (!(step.contextIds instanceof Int32Array) || !(step.actionIds instanceof Int32Array) || !(step.logProbs instanceof Float32Array)) {
      throw new TypeError("encodeTrajectory: contextIds/actionIds must be Int32Array and logProbs Float32Array");
    }
    if (step.logProbs.length !== step.actionIds.length) {
      throw new RangeError(`encodeTrajectory: step has ${step.actionIds.length} action ids but ${step.logProbs.length} log-probs`);
    }
    const key = utf8.encode(step.stateKey);
    stateKeys.push(key);
    size += 1 + 8 + uvarSize(key.byteLength) + key.byteLength;
    size += uvarSize(step.contextIds.length) + 4 * step.contextIds.length;
    size += uvarSize(step.actionIds.length) + 8 * step.actionIds.length;
  }
  const boot = t.bootstrapContextIds;
  if (boot !== undefined) {
    if (!(boot instanceof Int32Array)) throw new TypeError("encodeTrajectory: bootstrapContextIds must be an Int32Array");
    size += uvarSize(boot.length) + 4 * boot.length;
  }

  const w = new Writer(size);
  w.u8(MAGIC0);
  w.u8(MAGIC1);
  w.u8(TRAJECTORY_CODEC_VERSION);
  w.u8((t.truncated ? F_TRUNCATED : 0) | (t.success ? F_SUCCESS : 0) | (boot !== undefined ? F_BOOTSTRAP : 0));
  w.uvar(zigzag(t.policyVersion));
  for (const s of strings) {
    w.uvar(s.byteLength);
    w.raw(s);
  }
  w.uvar(t.steps.length);
  t.steps.forEach((step, i) => {
    w.u8(step.done ? S_DONE : 0);
    w.f64(step.reward);
    w.uvar(stateKeys[i].byteLength);
    w.raw(stateKeys[i]);
    w.uvar(step.contextIds.length);
    w.array32(step.contextIds);
    w.uvar(step.actionIds.length);
    w.array32(step.actionIds);
    w.array32(step.logProbs);
  });
  if (boot !== undefined) {
    w.uvar(boot.length);
    w.array32(boot);
  }
  if (w.pos !== size) throw new Error(`encodeTrajectory: internal size mismatch (${w.pos} != ${size})`);
  return w.bytes;
}

class Reader {
  private readonly view: DataView;
  pos = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.pos;
  }

  need(n: number, what: string): void {
    if (n > this.remaining) throw new CodecError("truncated", `${what} needs ${n} bytes at offset ${this.pos}, only ${this.remaining} left`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++];
  }

  uvar(what: string): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i >= 8) throw new CodecError("malformed", `${what}: varint longer than 8 bytes at offset ${this.pos}`);
      const b = this.u8(what);
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) break;
      scale *= 128;
    }
    if (!Number.isSafeInteger(result)) throw new CodecError("malformed", `${what}: varint out of range`);
    return result;
  }

  /** A count of `elemBytes`-sized elements that must fit in what is left. */
  count(what: string, elemBytes: number): number {
    const n = this.uvar(what);
    this.need(n * elemBytes, what);
    return n;
  }

  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  str(what: string): string {
    const n = this.count(`${what} length`, 1);
    const slice = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return utf8Strict.decode(slice);
    } catch {
      throw new CodecError("malformed", `${what}: invalid UTF-8`);
    }
  }

  /** Copies n little-endian 4-byte elements into a fresh (aligned) buffer. */
  private copy32(n: number): ArrayBuffer {
    const start = this.bytes.byteOffset + this.pos;
    this.pos += 4 * n;
    return this.bytes.buffer.slice(start, start + 4 * n) as ArrayBuffer;
  }

  i32s(n: number): Int32Array {
    if (LITTLE_ENDIAN) return new Int32Array(this.copy32(n));
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++, this.pos += 4) out[i] = this.view.getInt32(this.pos, true);
    return out;
  }

  f32s(n: number): Float32Array {
    if (LITTLE_ENDIAN) return new Float32Array(this.copy32(n));
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++, this.pos += 4) out[i] = this.view.getFloat32(this.pos, true);
    return out;
  }
}

/** Encodes a trajectory as version 2: the version-1 message, DEFLATE-compressed (see the header). */
export function encodeTrajectoryCompressed(t: Trajectory): Uint8Array {
  const body = deflateRawSync(encodeTrajectory(t));
  const out = new Uint8Array(HEADER_BYTES + body.byteLength);
  out.set([MAGIC0, MAGIC1, COMPRESSED_CODEC_VERSION]);
  out.set(body, HEADER_BYTES);
  return out;
}

function inflate(bytes: Uint8Array): Uint8Array {
  try {
    return inflateRawSync(bytes.subarray(HEADER_BYTES), { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ERR_BUFFER_TOO_LARGE" || e instanceof RangeError) throw new CodecError("malformed", `inflates to more than ${MAX_INFLATED_BYTES} bytes`);
    throw new CodecError(e.code === "Z_BUF_ERROR" ? "truncated" : "malformed", `compressed body: ${e.message}`);
  }
}

/** A trajectory that cannot travel: its payload is larger than the NATS server accepts. */
export class TrajectoryTooLargeError extends Error {
  constructor(
    readonly trajId: string,
    readonly bytes: number,
    readonly maxPayload: number,
  ) {
    super(
      `trajectory ${trajId} is ${bytes} bytes compressed (with headers), above the NATS server's max_payload of ${maxPayload} bytes; ` +
        "the episode is dropped (raise max_payload in the server configuration, or shorten observations / spec.environment.maxSteps)",
    );
    this.name = "TrajectoryTooLargeError";
  }
}

/** Room kept for the message's headers (Nats-Msg-Id …) and subject next to the payload. */
export const PAYLOAD_OVERHEAD_BYTES = 256;

/** Throws TrajectoryTooLargeError when `payload` (plus header room) exceeds the server's `maxPayload`. */
export function checkPayloadSize(trajId: string, payload: Uint8Array, maxPayload: number): void {
  const size = payload.byteLength + PAYLOAD_OVERHEAD_BYTES;
  if (size > maxPayload) throw new TrajectoryTooLargeError(trajId, size, maxPayload);
}

/**
 * Decodes a trajectory of either version (2 is inflated first); throws CodecError (kind "unknown-version" |
 * "truncated" | "malformed") on bad input.
 */
export function decodeTrajectory(bytes: Uint8Array): Trajectory {
  if (bytes instanceof Uint8Array && bytes.byteLength >= HEADER_BYTES && bytes[0] === MAGIC0 && bytes[1] === MAGIC1 && bytes[2] === COMPRESSED_CODEC_VERSION) {
    const inner = inflate(bytes);
    if (inner[2] !== TRAJECTORY_CODEC_VERSION)
      throw new CodecError("malformed", `a compressed payload must hold a version ${TRAJECTORY_CODEC_VERSION} message`);
    return decodeTrajectory(inner);
  }
  if (!(bytes instanceof Uint8Array)) throw new CodecError("malformed", "input is not a Uint8Array");
  if (bytes.byteLength > 0 && bytes[0] !== MAGIC0) throw new CodecError("malformed", `bad magic byte 0x${bytes[0].toString(16)} (not a steppo trajectory)`);
  if (bytes.byteLength > 1 && bytes[1] !== MAGIC1) throw new CodecError("malformed", `bad magic byte 0x${bytes[1].toString(16)} (not a steppo trajectory)`);
  if (bytes.byteLength < HEADER_BYTES) throw new CodecError("truncated", `${bytes.byteLength} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const version = bytes[2];
  if (version !== TRAJECTORY_CODEC_VERSION) {
    throw new CodecError("unknown-version", `wire version ${version}, this build reads versions ${TRAJECTORY_CODEC_VERSION} and ${COMPRESSED_CODEC_VERSION}`);
  }
  const r = new Reader(bytes);
  r.pos = HEADER_BYTES;
  const flags = r.u8("flags");
  if ((flags & ~(F_TRUNCATED | F_SUCCESS | F_BOOTSTRAP)) !== 0) throw new CodecError("malformed", `unknown trajectory flags 0x${flags.toString(16)}`);
  const zz = r.uvar("policyVersion");
  const policyVersion = zz % 2 === 0 ? zz / 2 : -(zz + 1) / 2;
  const trajId = r.str("trajId");
  const workerId = r.str("workerId");
  const taskId = r.str("taskId");
  const groupId = r.str("groupId");
  const family = r.str("family");
  // Each step takes at least 12 bytes (flags, reward, three zero lengths).
  const stepCount = r.count("step count", 12);
  const steps: StepRecord[] = [];
  for (let i = 0; i < stepCount; i++) {
    const sflags = r.u8(`step ${i} flags`);
    if ((sflags & ~S_DONE) !== 0) throw new CodecError("malformed", `step ${i}: unknown step flags 0x${sflags.toString(16)}`);
    const reward = r.f64(`step ${i} reward`);
    const stateKey = r.str(`step ${i} stateKey`);
    const lc = r.count(`step ${i} context length`, 4);
    const contextIds = r.i32s(lc);
    const la = r.count(`step ${i} action length`, 8);
    const actionIds = r.i32s(la);
    const logProbs = r.f32s(la);
    steps.push({ contextIds, actionIds, logProbs, reward, done: (sflags & S_DONE) !== 0, stateKey });
  }
  const traj: Trajectory = {
    trajId,
    workerId,
    policyVersion,
    taskId,
    groupId,
    family,
    steps,
    truncated: (flags & F_TRUNCATED) !== 0,
    success: (flags & F_SUCCESS) !== 0,
  };
  if (flags & F_BOOTSTRAP) {
    const n = r.count("bootstrap context length", 4);
    traj.bootstrapContextIds = r.i32s(n);
  }
  if (r.remaining !== 0) throw new CodecError("malformed", `${r.remaining} trailing bytes after the trajectory`);
  return traj;
}
