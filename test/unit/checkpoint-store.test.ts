import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  type CheckpointPayload,
  CorruptCheckpointError,
  listCheckpoints,
  loadLatestCheckpoint,
  readCheckpoint,
  writeCheckpoint,
} from "../../learner/checkpoint-store.ts";

const root = await mkdtemp(join(tmpdir(), "steppo-ckpt-test-"));
after(() => rm(root, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => join(root, `d${dirCount++}`);

/** Bit patterns that must survive exactly: NaN payloads, −0, ±∞, denormals, extremes. */
const SPECIAL_BITS = [0x7fc00000, 0x7fa00001, 0xffc12345, 0x80000000, 0x00000000, 0x7f800000, 0xff800000, 0x00000001, 0x807fffff, 0x7f7fffff, 0x3f800000];

function payload(tag: number): CheckpointPayload {
  const special = new Float32Array(new Uint32Array(SPECIAL_BITS).buffer);
  return {
    meta: { tag, note: "é中🙂", nested: { a: [1, 2, 3] } },
    tensors: [
      { name: "special", shape: [special.length], data: special },
      { name: "w", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, tag) },
      { name: "scalar", shape: [], data: Float32Array.of(-tag) },
      { name: "empty", shape: [0, 4], data: new Float32Array(0) },
    ],
  };
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function assertSamePayload(actual: CheckpointPayload, expected: CheckpointPayload): void {
  assert.deepEqual(actual.meta, expected.meta);
  assert.equal(actual.tensors.length, expected.tensors.length);
  actual.tensors.forEach((t, i) => {
    assert.equal(t.name, expected.tensors[i].name);
    assert.deepEqual(t.shape, expected.tensors[i].shape);
    assert.deepEqual(bits(t.data), bits(expected.tensors[i].data));
  });
}

describe("checkpoint store", () => {
  it("round-trips meta and exact float32 bits (NaN payloads, −0, denormals)", async () => {
    const dir = freshDir();
    const p = payload(7);
    const path = await writeCheckpoint(dir, 7, p, 3);
    assert.equal(path, join(dir, "ckpt-00000007.steppo"));
    assertSamePayload(await readCheckpoint(path), p);
    const head = await readFile(path);
    assert.equal(head.toString("latin1", 0, 8), "STEPPOCK");
    const loaded = await loadLatestCheckpoint(dir);
    assert.ok(loaded);
    assert.equal(loaded.update, 7);
    assert.equal(loaded.path, path);
    assertSamePayload(loaded, p);
    // −0 and a NaN payload, spelled out.
    assert.ok(Object.is(loaded.tensors[0].data[3], -0));
    assert.equal(bits(loaded.tensors[0].data)[1], 0x7fa00001);
  });

  it("keeps only the newest K checkpoints", async () => {
    const dir = freshDir();
    for (let u = 1; u <= 5; u++) await writeCheckpoint(dir, u * 10, payload(u), 2);
    assert.deepEqual(
      (await listCheckpoints(dir)).map((c) => c.update),
      [40, 50],
    );
    assert.equal((await loadLatestCheckpoint(dir))?.update, 50);
    // Updates past 8 digits still sort numerically.
    await writeCheckpoint(dir, 123_456_789, payload(9), 2);
    assert.deepEqual(
      (await listCheckpoints(dir)).map((c) => c.update),
      [50, 123_456_789],
    );
  });

  it("a truncated newest file is reported with its path and the previous one is used", async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, 1, payload(1), 3);
    const newest = await writeCheckpoint(dir, 2, payload(2), 3);
    const full = (await readFile(newest)).length;
    await truncate(newest, full - 100);
    const reported: [string, Error][] = [];
    const loaded = await loadLatestCheckpoint(dir, (path, err) => reported.push([path, err]));
    assert.equal(loaded?.update, 1);
    assertSamePayload(loaded!, payload(1));
    assert.equal(reported.length, 1);
    assert.equal(reported[0][0], newest);
    assert.ok(reported[0][1] instanceof CorruptCheckpointError);
    assert.equal((reported[0][1] as CorruptCheckpointError).reason, "truncated");
    assert.match(reported[0][1].message, new RegExp(`${newest.replaceAll("\\", "\\\\")}.*truncated`));
    // Cut inside the header and inside the magic: still "truncated", never a crash.
    await truncate(newest, 20);
    await assert.rejects(readCheckpoint(newest), (e: CorruptCheckpointError) => e.reason === "truncated");
    await truncate(newest, 3);
    await assert.rejects(readCheckpoint(newest), (e: CorruptCheckpointError) => e.reason === "truncated");
  });

  it("the default reporter warns with the path", async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, 1, payload(1), 3);
    const bad = join(dir, "ckpt-00000002.steppo");
    await writeFile(bad, "not a checkpoint at all");
    const warn = console.warn;
    const lines: string[] = [];
    console.warn = (...args: unknown[]) => lines.push(args.join(" "));
    try {
      assert.equal((await loadLatestCheckpoint(dir))?.update, 1);
    } finally {
      console.warn = warn;
    }
    assert.equal(lines.length, 1);
    assert.ok(lines[0].includes(bad));
    await assert.rejects(readCheckpoint(bad), (e: CorruptCheckpointError) => e.reason === "bad-magic" && e.message.includes(bad));
  });

  it("a flipped byte fails the checksum, naming the path", async () => {
    const dir = freshDir();
    const path = await writeCheckpoint(dir, 3, payload(3), 3);
    const buf = await readFile(path);
    buf[buf.length - 40] ^= 0x01; // inside the float data
    await writeFile(path, buf);
    await assert.rejects(readCheckpoint(path), (e: unknown) => {
      assert.ok(e instanceof CorruptCheckpointError);
      assert.equal(e.reason, "checksum");
      assert.equal(e.path, path);
      assert.match(e.message, /checksum mismatch/);
      assert.ok(e.message.includes(path));
      return true;
    });
    assert.equal(await loadLatestCheckpoint(dir, () => {}), undefined);
  });

  it("unknown version and bad header JSON are named", async () => {
    const dir = freshDir();
    const path = await writeCheckpoint(dir, 4, payload(4), 3);
    const good = await readFile(path);
    const v2 = Buffer.from(good);
    v2.writeUInt32LE(2, 8);
    await writeFile(path, v2);
    await assert.rejects(readCheckpoint(path), (e: CorruptCheckpointError) => e.reason === "unknown-version" && /version 2/.test(e.message));
    const badJson = Buffer.from(good);
    badJson[16] = "]".charCodeAt(0); // the header's opening brace
    await writeFile(path, badJson);
    await assert.rejects(readCheckpoint(path), (e: CorruptCheckpointError) => e.reason === "bad-header" && /bad header JSON/.test(e.message));
  });

  it("leftover .tmp files are ignored", async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, 5, payload(5), 3);
    await writeFile(join(dir, "ckpt-00000006.steppo.tmp"), "half-written");
    assert.deepEqual(
      (await listCheckpoints(dir)).map((c) => c.update),
      [5],
    );
    assert.equal((await loadLatestCheckpoint(dir))?.update, 5);
    // And a successful write leaves no .tmp of its own behind.
    await writeCheckpoint(dir, 7, payload(7), 3);
    assert.deepEqual((await readdir(dir)).sort(), ["ckpt-00000005.steppo", "ckpt-00000006.steppo.tmp", "ckpt-00000007.steppo"]);
  });

  it("an empty or missing directory → undefined", async () => {
    const dir = freshDir();
    assert.equal(await loadLatestCheckpoint(dir), undefined);
    await writeCheckpoint(dir, 1, payload(1), 1);
    await rm(join(dir, "ckpt-00000001.steppo"));
    assert.equal(await loadLatestCheckpoint(dir), undefined);
    assert.deepEqual(await listCheckpoints(dir), []);
  });

  it("rejects a tensor whose shape does not match its data, and keep < 1", async () => {
    const dir = freshDir();
    await assert.rejects(writeCheckpoint(dir, 1, { meta: {}, tensors: [{ name: "x", shape: [2, 2], data: new Float32Array(3) }] }, 1), /shape \[2, 2\]/);
    await assert.rejects(writeCheckpoint(dir, 1, payload(1), 0), /keep/);
  });

  it("a checkpoint name that is a directory: reported, skipped, and the next saves (of that update too) succeed", async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, 1, payload(1), 2);
    await mkdir(join(dir, "ckpt-00000002.steppo"));
    const skipped: string[] = [];
    assert.equal((await loadLatestCheckpoint(dir, (path) => skipped.push(path)))?.update, 1, "falls back to update 1");
    assert.deepEqual(skipped, [join(dir, "ckpt-00000002.steppo")]);
    // The learner resumed at update 1 and saves update 2 again: the directory is moved aside, not in the way.
    await writeCheckpoint(dir, 2, payload(2), 2);
    await writeCheckpoint(dir, 3, payload(3), 2);
    assert.deepEqual(
      (await listCheckpoints(dir)).map((c) => c.update),
      [2, 3],
    );
    assert.ok((await readdir(dir)).some((n) => n.startsWith("ckpt-00000002.steppo.unusable-")));
  });

  it("pruning skips a directory with a checkpoint's name instead of failing the save", async () => {
    const dir = freshDir();
    await mkdir(join(dir, "ckpt-00000001.steppo"), { recursive: true });
    for (const u of [2, 3, 4]) await writeCheckpoint(dir, u, payload(u), 2);
    assert.deepEqual(
      (await listCheckpoints(dir)).map((c) => c.update),
      [3, 4],
    );
  });
});
