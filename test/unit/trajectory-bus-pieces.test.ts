// The pure pieces of the NATS trajectory bus: the consumer's trajId memory (runtime/nats/dedupe-memory.ts)
// and the stream configurations both ends create (runtime/nats/trajectory-stream.ts). Publisher and consumer
// themselves run against a real nats-server in test/integration/nats-bus.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { jobNames, natsJobRef } from "../../core/nats-names.ts";
import { emptyDeadLetterCounts } from "../../runtime/nats/dead-letters.ts";
import { DedupeMemory } from "../../runtime/nats/dedupe-memory.ts";
import { dlqStreamConfig, NS_PER_MS, trajStreamConfig, trajStreamOptions } from "../../runtime/nats/trajectory-stream.ts";

describe("de-dup memory", () => {
  test("trajIds restored from a checkpoint are done; handed-out ones are held until acked or given back", () => {
    const m = new DedupeMemory(10, ["old-1", "old-2"]);
    assert.deepEqual(m.get("old-1"), { held: false, seq: 0 });
    assert.equal(m.get("new"), undefined);
    m.hold("new", 7);
    assert.deepEqual(m.get("new"), { held: true, seq: 7 });
    m.done("new", 7);
    assert.deepEqual(m.get("new"), { held: false, seq: 7 });
    m.hold("naked", 8);
    m.forget("naked");
    assert.equal(m.get("naked"), undefined, "given back: handed out again when redelivered");
  });

  test("beyond capacity the oldest done ids go first; held ones never do", () => {
    const m = new DedupeMemory(3);
    m.hold("a", 1);
    m.hold("b", 2);
    m.hold("c", 3);
    m.hold("d", 4);
    m.done("b", 2); // 4 known, capacity 3: b is the only done one
    assert.equal(m.get("b"), undefined);
    assert.equal(m.size, 3);
    m.done("a", 1);
    m.done("c", 3);
    m.hold("e", 5);
    m.done("d", 4); // done in the order a, c, d: a is the oldest
    assert.equal(m.size, 3);
    assert.equal(m.get("a"), undefined);
    assert.deepEqual([m.get("c")?.held, m.get("d")?.held, m.get("e")?.held], [false, false, true]);
  });

  test("acking moves an id to the back: the one acked last is kept longest", () => {
    const m = new DedupeMemory(2, ["x", "y"]);
    m.hold("z", 3);
    m.done("z", 3); // x is the oldest done id
    assert.equal(m.get("x"), undefined);
    m.markConsumed(["w"]); // y goes next
    assert.deepEqual([m.get("y"), m.get("z")?.seq, m.get("w")?.seq], [undefined, 3, 0]);
  });

  test("markConsumed leaves a held id as it is", () => {
    const m = new DedupeMemory(10);
    m.hold("h", 4);
    m.markConsumed(["h", "k"]);
    assert.deepEqual(m.get("h"), { held: true, seq: 4 });
    assert.deepEqual(m.get("k"), { held: false, seq: 0 });
  });
});

describe("trajectory streams", () => {
  const names = jobNames(natsJobRef({ name: "cfg" }));

  test("the trajectory stream is a bounded work queue that refuses new messages when full", () => {
    const c = trajStreamConfig(names, trajStreamOptions());
    assert.deepEqual(c, {
      name: names.trajStream,
      subjects: [names.trajFilter],
      retention: RetentionPolicy.Workqueue,
      discard: DiscardPolicy.New,
      storage: StorageType.File,
      num_replicas: 1,
      max_msgs: 100_000,
      max_bytes: 1 << 30,
      duplicate_window: 120_000 * NS_PER_MS,
    });
    assert.equal(trajStreamConfig(names, trajStreamOptions({ storage: "memory", maxMsgs: 3 })).max_msgs, 3);
    assert.equal(trajStreamConfig(names, trajStreamOptions({ storage: "memory" })).storage, StorageType.Memory);
  });

  test("the dead-letter stream keeps a bounded history, oldest discarded first", () => {
    const c = dlqStreamConfig(names, trajStreamOptions({ dlqMaxMsgs: 5 }));
    assert.deepEqual(c, {
      name: names.dlqStream,
      subjects: [names.dlqSubject],
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      storage: StorageType.File,
      num_replicas: 1,
      max_msgs: 5,
      max_age: 7 * 24 * 3600_000 * NS_PER_MS,
      duplicate_window: 120_000 * NS_PER_MS,
    });
  });

  test("every dead-letter kind starts at zero", () => {
    const k = emptyDeadLetterCounts();
    assert.ok(Object.values(k).every((n) => n === 0));
    assert.ok("malformed" in k && "non-finite" in k && !("policy-version-ahead" in k));
  });
});
