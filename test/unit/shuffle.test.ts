import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../core/rng.ts";
import { minibatchIndices, paddingTokens, sequentialIndices } from "../../learner/shuffle.ts";

function assertPartition(mbs: number[][], n: number, size: number): void {
  const seen = mbs.flat().sort((a, b) => a - b);
  assert.deepEqual(
    seen,
    Array.from({ length: n }, (_, i) => i),
    "every index exactly once",
  );
  // Only one minibatch may be short.
  assert.ok(mbs.filter((mb) => mb.length !== size).length <= 1);
  for (const mb of mbs) assert.ok(mb.length >= 1 && mb.length <= size);
}

describe("minibatchIndices", () => {
  it("same seed → same order; different seed → different order", () => {
    const a = minibatchIndices(100, 8, new Rng(7));
    const b = minibatchIndices(100, 8, new Rng(7));
    const c = minibatchIndices(100, 8, new Rng(8));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it("every index exactly once, minibatches of the given size (the last may be smaller)", () => {
    const mbs = minibatchIndices(61, 8, new Rng(1));
    assertPartition(mbs, 61, 8);
    assert.deepEqual(
      mbs.map((mb) => mb.length),
      [8, 8, 8, 8, 8, 8, 8, 5],
    );
    assert.deepEqual(minibatchIndices(0, 4, new Rng(1)), []);
  });

  it("spreads the consecutive steps of a trajectory over minibatches", () => {
    // 10 trajectories × 6 steps, stored trajectory by trajectory: step i belongs to trajectory ⌊i/6⌋.
    const trajOf = (i: number) => Math.floor(i / 6);
    let spreadSum = 0;
    const seeds = [1, 2, 3, 4, 5];
    for (const seed of seeds) {
      const mbs = minibatchIndices(60, 6, new Rng(seed));
      const minibatchesOf = Array.from({ length: 10 }, () => new Set<number>());
      mbs.forEach((mb, m) => {
        for (const i of mb) minibatchesOf[trajOf(i)].add(m);
      });
      // No minibatch holds all six steps of one trajectory…
      for (const set of minibatchesOf) assert.ok(set.size > 1);
      spreadSum += minibatchesOf.reduce((s, set) => s + set.size, 0) / 10;
    }
    // …and on average a trajectory's steps land in far more than one minibatch (expected ≈ 4.1 of 10).
    assert.ok(spreadSum / seeds.length > 3, `mean spread ${spreadSum / seeds.length}`);
    // Without shuffling every trajectory sits in exactly one minibatch.
    assert.deepEqual(sequentialIndices(60, 6)[1], [6, 7, 8, 9, 10, 11]);
  });

  it("bucketing by length cuts padding and keeps the partition and determinism", () => {
    const lengths = Array.from({ length: 256 }, (_, i) => 10 + ((i * 7919) % 500));
    const plain = minibatchIndices(256, 16, new Rng(3));
    const bucketed = minibatchIndices(256, 16, new Rng(3), { lengths, bucketByLength: true });
    assertPartition(bucketed, 256, 16);
    assert.deepEqual(bucketed, minibatchIndices(256, 16, new Rng(3), { lengths, bucketByLength: true }));
    const padPlain = paddingTokens(plain, lengths);
    const padBucketed = paddingTokens(bucketed, lengths);
    assert.ok(padBucketed < padPlain / 2, `padding ${padBucketed} vs ${padPlain}`);
    // The minibatch order is shuffled: not sorted by length across the whole epoch.
    const maxLen = bucketed.map((mb) => Math.max(...mb.map((i) => lengths[i])));
    assert.notDeepEqual(
      maxLen,
      [...maxLen].sort((a, b) => a - b),
    );
  });

  it("rejects bad sizes and bucketing without lengths", () => {
    assert.throws(() => minibatchIndices(10, 0, new Rng(1)), /minibatchSize/);
    assert.throws(() => minibatchIndices(10, 2, new Rng(1), { bucketByLength: true }), /lengths/);
    assert.throws(() => sequentialIndices(-1, 2), /non-negative/);
  });
});

describe("sequentialIndices", () => {
  it("0..n−1 in order", () => {
    assert.deepEqual(sequentialIndices(5, 2), [[0, 1], [2, 3], [4]]);
  });
});
