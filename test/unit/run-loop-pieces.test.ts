// The rules the distributed learner's correctness rests on, tested without processes: the durable-ack
// ledger (ack only after the checkpoint that covers it), the staleness gate, and the one run-state format.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AckLedger } from "../../runtime/ack-ledger.ts";
import { freshRunState, readRunState } from "../../runtime/run-state.ts";
import { StalenessGate } from "../../runtime/staleness-gate.ts";

function delivery(id: string, acked: string[]) {
  return { traj: { trajId: id }, ack: async () => void acked.push(id) };
}

test("ack ledger: nothing is acked before the checkpoint that covers it; the checkpoint records what is held", async () => {
  const acked: string[] = [];
  const ledger = new AckLedger({ consumed: 10, stale: 1 }, ["old"], 100);
  const [a, b, c] = ["a", "b", "c"].map((id) => delivery(id, acked));
  for (const d of [a, b, c]) ledger.taken(d);
  ledger.consumed([a, b]);
  ledger.stale(c);
  assert.deepEqual(acked, [], "trained on, not yet durable");
  assert.equal(ledger.pending(), true);
  assert.equal(ledger.staleTotal, 2);
  const snap = ledger.snapshot();
  assert.deepEqual(snap.accounting, { consumed: 12, stale: 2 });
  assert.deepEqual(snap.doneIds, ["old", "a", "b", "c"]);
  assert.deepEqual(ledger.committed, { consumed: 10, stale: 1 }, "the durable totals move only at commit");
  await ledger.commit();
  assert.deepEqual(acked.sort(), ["a", "b", "c"]);
  assert.deepEqual(ledger.committed, { consumed: 12, stale: 2 });
  assert.equal(ledger.pending(), false);
});

test("ack ledger: a batch taken and not trained on (a stop) is forgotten, so its redelivery is not suppressed", () => {
  const ledger = new AckLedger({ consumed: 0, stale: 0 }, [], 100);
  const ds = ["x", "y"].map((id) => delivery(id, []));
  for (const d of ds) ledger.taken(d);
  ledger.untake(ds);
  assert.deepEqual(ledger.snapshot().doneIds, []);
  assert.equal(ledger.pending(), false);
});

test("ack ledger: the done list a checkpoint keeps is bounded, newest kept", () => {
  const ledger = new AckLedger({ consumed: 0, stale: 0 }, ["1", "2", "3"], 2);
  ledger.taken(delivery("4", []));
  assert.deepEqual(ledger.snapshot().doneIds, ["3", "4"]);
});

test("staleness gate: admits lags 0..maxPolicyLag, drops older and newer-than-the-learner samples, records admitted lags", () => {
  const gate = new StalenessGate(2);
  assert.equal(gate.admit(5, 5), 0);
  assert.equal(gate.admit(3, 5), 2);
  assert.equal(gate.admit(2, 5), null, "3 versions old");
  assert.equal(gate.admit(6, 5), null, "from a version lost in a learner crash");
  assert.deepEqual(gate.lag, { sum: 2, n: 2, max: 2 });
  assert.equal(gate.meanLag, 1);
});

test("run state: one format; update 0 is a starting point; the two earlier formats are read into it", () => {
  const fresh = freshRunState({ train: 0.5, test: 0.4 }, 0.9);
  assert.equal(fresh.curve.length, 1);
  assert.deepEqual(readRunState({ initial: { test: 0.4 }, demonstrations: 0.9 }, 0), { kind: "warm-start", initial: { test: 0.4 }, demonstrations: 0.9 });
  const run = { ...fresh, envSteps: 7, transports: { embedded: { workers: [] } } };
  assert.deepEqual(readRunState(run, 3), { kind: "run", state: run, wroteBy: ["embedded"] });

  const embedded = readRunState({ envSteps: 5, curve: [], initial: {}, checkpoints: [], workers: [{ id: "worker-0" }] }, 2);
  assert.equal(embedded.kind, "run");
  if (embedded.kind === "run") {
    assert.deepEqual(embedded.wroteBy, ["embedded"]);
    assert.equal(embedded.state.envSteps, 5);
    assert.deepEqual(embedded.state.transports.embedded, { workers: [{ id: "worker-0" }] });
  }
  const distributed = readRunState({ envSteps: 5, curve: [], initial: {}, checkpoints: [], accounting: { consumed: 8, stale: 0 }, doneIds: ["a"] }, 2);
  assert.equal(distributed.kind, "run");
  if (distributed.kind === "run") assert.deepEqual(distributed.state.transports.distributed, { accounting: { consumed: 8, stale: 0 }, doneIds: ["a"] });
  assert.throws(() => readRunState({ initial: {} }, 4), /not a run state steppo wrote/);
});
