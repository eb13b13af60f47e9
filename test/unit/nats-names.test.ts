// NATS names of a job: unique per (cluster id, namespace, name), valid everywhere NATS uses them, and
// shortened with a digest long enough that no search finds two identities sharing a name.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  clusterIdProblem,
  HASH_HEX_DIGITS,
  type JobNames,
  jobNames,
  jobToken,
  MAX_TOKEN_LENGTH,
  type NatsJobRef,
  natsJobRef,
  sanitizeName,
} from "../../core/nats-names.ts";

/** Every name a job has on NATS (subjects for a sample worker id), by field. */
function allNames(n: JobNames): Record<string, string> {
  const { trajSubject, ...rest } = n;
  return { ...rest, trajSubject: trajSubject("pod-1"), trajSubjectOther: trajSubject("w/2") };
}

/** No field of `a` equals any field of `b`, and no subject of one is matched by the other's filter. */
function assertDisjoint(a: NatsJobRef, b: NatsJobRef): void {
  const na = allNames(jobNames(a));
  const nb = allNames(jobNames(b));
  for (const [field, value] of Object.entries(na)) {
    if (field === "consumer") continue; // the durable's name is scoped by its stream, which differs
    assert.ok(!Object.values(nb).includes(value), `${field} "${value}" of ${JSON.stringify(a)} also names something of ${JSON.stringify(b)}`);
  }
  const prefix = (filter: string) => filter.slice(0, -1); // "steppo.<job>.traj.>" → "steppo.<job>.traj."
  assert.ok(!nb.trajSubject.startsWith(prefix(na.trajFilter)), "a's learner filter would match b's trajectories");
  assert.ok(!na.trajSubject.startsWith(prefix(nb.trajFilter)), "b's learner filter would match a's trajectories");
  assert.notEqual(na.trajStream, nb.trajStream);
  assert.notEqual(na.resultsBucket, nb.resultsBucket);
  assert.notEqual(na.resultsBucket, nb.weightsBucket);
}

/** What NATS accepts: stream/bucket names of [A-Za-z0-9_-] well under 255 characters; subjects of such tokens. */
function assertValid(n: JobNames): void {
  for (const name of [n.trajStream, n.dlqStream, n.consumer, n.kvBucket, n.weightsBucket, n.resultsBucket, n.job]) {
    assert.match(name, /^[A-Za-z0-9_-]+$/, name);
  }
  // KV and object stores live in streams named KV_<bucket> and OBJ_<bucket>: the longest names there are.
  for (const stream of [n.trajStream, n.dlqStream, `KV_${n.kvBucket}`, `OBJ_${n.weightsBucket}`, `OBJ_${n.resultsBucket}`])
    assert.ok(stream.length <= 96, stream);
  for (const subject of [n.trajSubject("pod-1"), n.dlqSubject, n.trajFilter]) {
    for (const token of subject.split(".")) assert.match(token, /^([A-Za-z0-9_-]+|>)$/, subject);
  }
}

describe("NATS names per job identity", () => {
  test("same name in two namespaces: every name differs", () => {
    const a = { namespace: "ns-a", name: "quickstart" };
    const b = { namespace: "ns-b", name: "quickstart" };
    assertDisjoint(a, b);
    assert.equal(jobNames(a).trajStream, "steppo-ns-a_quickstart-traj", "plain identities stay readable");
    assert.equal(jobNames(a).kvBucket, "steppo-ns-a_quickstart");
    assert.equal(jobNames(a).trajSubject("pod-1"), "steppo.ns-a_quickstart.traj.pod-1");
  });

  test("same namespace and name on two clusters (one NATS server): every name differs", () => {
    const job = { namespace: "default", name: "quickstart" };
    assertDisjoint({ ...job, cluster: "east" }, { ...job, cluster: "west" });
    assertDisjoint({ ...job, cluster: "" }, { ...job, cluster: "east" });
    assert.equal(jobToken({ ...job, cluster: "east" }), "east_default_quickstart");
    assert.equal(jobToken({ ...job, cluster: "" }), jobToken(job), "no cluster id: the names of operators without one");
  });

  test("parts cannot be re-split into another identity", () => {
    // "a-b" + "c" vs "a" + "b-c", and a cluster id shifting into the namespace.
    assertDisjoint({ namespace: "a-b", name: "c" }, { namespace: "a", name: "b-c" });
    assertDisjoint({ cluster: "x", namespace: "y", name: "z" }, { namespace: "x_y", name: "z" });
    assertDisjoint({ namespace: "x_y", name: "z" }, { namespace: "x", name: "y_z" });
  });

  test("a long identity is shortened deterministically, with a 128-bit sha256 digest, and stays valid", () => {
    assert.ok(HASH_HEX_DIGITS * 4 >= 96);
    const long = { cluster: "prod-eu", namespace: "team-".repeat(12).slice(0, 63), name: "experiment-".repeat(20).slice(0, 200) };
    const t = jobToken(long);
    assert.equal(t, jobToken({ ...long }), "deterministic");
    assert.ok(t.length <= MAX_TOKEN_LENGTH, `${t.length} characters`);
    const digest = /__([0-9a-f]+)$/.exec(t)?.[1];
    assert.equal(digest?.length, HASH_HEX_DIGITS, t);
    assert.ok(t.startsWith("prod-eu_team-team-"), `readable prefix: ${t}`);
    assertValid(jobNames(long));
    // One character apart at the very end (past the readable prefix) still differs.
    assertDisjoint(long, { ...long, name: `${long.name.slice(0, -1)}y` });
  });

  test("identities NATS could not spell, or that differ only in case, get disjoint valid names", () => {
    const odd = [
      { namespace: "team", name: "job.v2 x" },
      { namespace: "team", name: "job_v2_x" },
      { namespace: "team", name: "Job" },
      { namespace: "team", name: "job" },
      { namespace: "team", name: "job>*" },
    ];
    for (const r of odd) assertValid(jobNames(r));
    for (let i = 0; i < odd.length; i++) for (let k = i + 1; k < odd.length; k++) assertDisjoint(odd[i], odd[k]);
    const tokens = odd.map((r) => jobToken(r).toLowerCase());
    assert.equal(new Set(tokens).size, odd.length, "no two names differ only in case (case-insensitive file systems)");
  });

  test("empty parts are refused; a job file without a namespace runs in default", () => {
    assert.throws(() => jobToken({ namespace: "", name: "j" }), /namespace must not be empty/);
    assert.throws(() => jobToken({ namespace: "ns", name: "" }), /name must not be empty/);
    assert.deepEqual(natsJobRef({ name: "j" }), { cluster: "", namespace: "default", name: "j" });
    assert.deepEqual(natsJobRef({ name: "j", namespace: "ns" }, "east"), { cluster: "east", namespace: "ns", name: "j" });
  });

  test("worker ids: kept when safe, else shortened with the digest", () => {
    assert.equal(sanitizeName("pod-1"), "pod-1");
    assert.notEqual(sanitizeName("a.b"), sanitizeName("a_b"));
    const s = sanitizeName("w/".repeat(100));
    assert.match(s, /^[A-Za-z0-9_-]+__[0-9a-f]{32}$/);
    assert.ok(s.length <= MAX_TOKEN_LENGTH);
  });

  test("cluster ids are short DNS labels", () => {
    assert.equal(clusterIdProblem(""), undefined);
    assert.equal(clusterIdProblem("prod-eu-1"), undefined);
    for (const bad of ["Prod", "a_b", "-a", "a.b", "x".repeat(33)]) assert.match(clusterIdProblem(bad) ?? "", /at most 32 characters/, bad);
  });
});
