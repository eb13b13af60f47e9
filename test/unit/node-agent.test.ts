// The node agent's pure parts: quantities, the one-node scheduler's fit, how a container becomes a
// process (command, $(VAR), mount paths, ports), and the pod phase/conditions it reports.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { containerEnv, expandVars, mapCommand, processSpec, remapPort, rewritePaths } from "../node-agent/container.ts";
import { type ContainerView, podConditions, podPhase } from "../node-agent/pod-status.ts";
import { parseQuantity } from "../node-agent/quantity.ts";
import { fits, podRequests, unscheduled } from "../node-agent/scheduler.ts";

function pod(name: string, resources: Record<string, unknown> = {}, extra: Partial<NonNullable<V1Pod["spec"]>> = {}, phase?: string): V1Pod {
  return {
    metadata: { name, uid: name, namespace: "default" },
    spec: { containers: [{ name: "c", image: "x", resources }], ...extra },
    status: phase ? { phase } : {},
  };
}

describe("quantities", () => {
  test("decimal, binary and exponent forms", () => {
    assert.equal(parseQuantity("500m"), 0.5);
    assert.equal(parseQuantity("2"), 2);
    assert.equal(parseQuantity(3), 3);
    assert.equal(parseQuantity("1Gi"), 2 ** 30);
    assert.equal(parseQuantity("1G"), 1e9);
    assert.equal(parseQuantity("1.5k"), 1500);
    assert.equal(parseQuantity("1e3"), 1000);
    assert.throws(() => parseQuantity("lots"), /not a resource quantity/);
  });
});

describe("scheduler", () => {
  const node = { name: "n", labels: { "kubernetes.io/os": "linux" }, allocatable: { cpu: "2", memory: "4Gi", pods: "110", "nvidia.com/gpu": "1" } };

  test("requests default to limits; containers add up", () => {
    const p = pod("a", { limits: { "nvidia.com/gpu": "1", cpu: "1" }, requests: { cpu: "250m" } });
    assert.deepEqual(podRequests(p), { "nvidia.com/gpu": 1, cpu: 0.25, pods: 1 });
  });

  test("a GPU pod fits once; the second is refused while the first runs, fits once it finished", () => {
    const gpu = { limits: { "nvidia.com/gpu": 1 } };
    const a = { ...pod("a", gpu, { nodeName: "n" }, "Running") };
    const b = pod("b", gpu);
    assert.deepEqual(fits(a, node, []), { fits: true });
    const r = fits(b, node, [a]);
    assert.equal(r.fits, false);
    assert.match((r as { reason: string }).reason, /Insufficient nvidia.com\/gpu/);
    assert.deepEqual(fits(b, node, [{ ...a, status: { phase: "Failed" } }]), { fits: true });
  });

  test("memory and cpu are accounted; nodeSelector must match", () => {
    assert.equal(fits(pod("big", { requests: { memory: "5Gi" } }), node, []).fits, false);
    assert.equal(fits(pod("sel", {}, { nodeSelector: { "kubernetes.io/os": "windows" } }), node, []).fits, false);
    assert.equal(fits(pod("sel2", {}, { nodeSelector: { "kubernetes.io/os": "linux" } }), node, []).fits, true);
  });

  test("only unbound, live pods of the default scheduler, oldest first", () => {
    const old = { ...pod("old"), metadata: { name: "old", uid: "old", creationTimestamp: new Date(1000) } };
    const young = { ...pod("young"), metadata: { name: "young", uid: "young", creationTimestamp: new Date(2000) } };
    const bound = pod("bound", {}, { nodeName: "n" });
    const other = pod("other", {}, { schedulerName: "volcano" });
    const done = pod("done", {}, {}, "Succeeded");
    assert.deepEqual(
      unscheduled([young, bound, other, done, old]).map((p) => p.metadata?.name),
      ["old", "young"],
    );
  });
});

describe("containers as processes", () => {
  const mounts = [
    { mountPath: "/var/lib/steppo", local: "/tmp/agent/claims/x" },
    { mountPath: "/etc/steppo/job", local: "/tmp/agent/pods/p/volumes/job" },
    { mountPath: "/var/lib/steppo/cache", local: "/tmp/agent/pods/p/volumes/cache" },
  ];

  test("mount paths are rewritten where they name a path, longest mount first, in one pass", () => {
    assert.equal(rewritePaths("/etc/steppo/job/job.yaml", mounts), "/tmp/agent/pods/p/volumes/job/job.yaml");
    assert.equal(rewritePaths("/var/lib/steppo/checkpoints", mounts), "/tmp/agent/claims/x/checkpoints");
    assert.equal(rewritePaths("/var/lib/steppo/cache/a", mounts), "/tmp/agent/pods/p/volumes/cache/a");
    assert.equal(rewritePaths("/var/lib/steppo", mounts), "/tmp/agent/claims/x");
    assert.equal(rewritePaths("--job=/etc/steppo/job/job.yaml", mounts), "--job=/tmp/agent/pods/p/volumes/job/job.yaml");
    assert.equal(
      rewritePaths("cat /etc/steppo/job/job.yaml; ls /var/lib/steppo", mounts),
      "cat /tmp/agent/pods/p/volumes/job/job.yaml; ls /tmp/agent/claims/x",
    );
    assert.equal(rewritePaths("/var/lib/steppoX/y", mounts), "/var/lib/steppoX/y", "a longer name is not the mount");
    assert.equal(rewritePaths("/opt/var/lib/steppo", mounts), "/opt/var/lib/steppo", "not a path prefix");
    // A local path under another mount path is not rewritten again.
    assert.equal(
      rewritePaths("/data", [
        { mountPath: "/data", local: "/tmp/data" },
        { mountPath: "/tmp", local: "/x" },
      ]),
      "/tmp/data",
    );
  });

  test("$(VAR) expansion as the kubelet does it", () => {
    assert.equal(expandVars("$(A)-$(B)", { A: "1" }), "1-$(B)");
    assert.equal(expandVars("$$(A)", { A: "1" }), "$(A)");
  });

  test("`steppo` (or no command: the image's entrypoint) is this checkout's bin/steppo.mjs", () => {
    assert.deepEqual(mapCommand(["steppo", "learner", "--job", "f"], "/co", "/node"), { file: "/node", args: ["/co/bin/steppo.mjs", "learner", "--job", "f"] });
    assert.deepEqual(mapCommand(["/usr/local/bin/steppo", "operator"], "/co", "/node"), { file: "/node", args: ["/co/bin/steppo.mjs", "operator"] });
    assert.deepEqual(mapCommand(["sh", "-c", "true"], "/co", "/node"), { file: "sh", args: ["-c", "true"] });
  });

  test("declared container ports become host ports in env values and args", () => {
    const ports = [{ containerPort: 9464, hostPort: 40001 }];
    assert.equal(remapPort("9464", ports), "40001");
    assert.equal(remapPort("--port=9464", ports), "--port=40001");
    assert.equal(remapPort("19464", ports), "19464");
  });

  test("a learner container: command, args and env mapped", async () => {
    const p: V1Pod = {
      metadata: { name: "j-learner-0", namespace: "ns" },
      spec: {
        containers: [
          {
            name: "learner",
            image: "ghcr.io/steppo/steppo:0.1.0",
            command: ["steppo", "learner"],
            args: ["--job", "/etc/steppo/job/job.yaml", "--checkpoint-dir", "/var/lib/steppo/checkpoints"],
            env: [
              { name: "STEPPO_METRICS_PORT", value: "9464" },
              { name: "STEPPO_RUN_DIR", value: "/var/lib/steppo/run" },
              { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            ],
            ports: [{ containerPort: 9464 }],
          },
        ],
      },
    };
    const none = { configMap: async () => undefined, secret: async () => undefined };
    const env = await containerEnv(p, p.spec!.containers[0], none);
    const spec = processSpec(p.spec!.containers[0], env, {
      checkout: "/co",
      podDir: "/tmp",
      mounts,
      ports: [{ containerPort: 9464, hostPort: 40002 }],
      base: { PATH: "/bin" },
      overrides: { STEPPO_ACK_WAIT_MS: "3000" },
    });
    assert.equal(spec.file, process.execPath);
    assert.deepEqual(spec.args, [
      "/co/bin/steppo.mjs",
      "learner",
      "--job",
      "/tmp/agent/pods/p/volumes/job/job.yaml",
      "--checkpoint-dir",
      "/tmp/agent/claims/x/checkpoints",
    ]);
    assert.deepEqual(spec.env, {
      PATH: "/bin",
      STEPPO_METRICS_PORT: "40002",
      STEPPO_RUN_DIR: "/tmp/agent/claims/x/run",
      POD: "j-learner-0",
      STEPPO_ACK_WAIT_MS: "3000",
    });
  });

  test("a missing secret key is a config error unless optional", async () => {
    const c = { name: "c", env: [{ name: "X", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] };
    const none = { configMap: async () => undefined, secret: async () => undefined };
    await assert.rejects(containerEnv(pod("p"), c, none), /couldn't find key k in Secret default\/s/);
    const optional = { name: "c", env: [{ name: "X", valueFrom: { secretKeyRef: { name: "s", key: "k", optional: true } } }] };
    assert.deepEqual(await containerEnv(pod("p"), optional, none), {});
  });
});

describe("pod phase and conditions", () => {
  const c = (state: ContainerView["state"], everStarted = true, ready = false): ContainerView => ({
    name: "c",
    image: "x",
    state,
    restartCount: 0,
    ready,
    everStarted,
  });
  const running = c({ kind: "running", startedAt: "t", pid: 1 }, true, true);
  const exited = (code: number) => c({ kind: "terminated", exitCode: code, reason: code ? "Error" : "Completed", startedAt: "t", finishedAt: "t" });
  const creating = c({ kind: "waiting", reason: "ContainerCreating" }, false);

  test("phases per restart policy", () => {
    assert.equal(podPhase("Never", [creating], false), "Pending");
    assert.equal(podPhase("Never", [running], false), "Running");
    assert.equal(podPhase("Never", [exited(0)], false), "Succeeded");
    assert.equal(podPhase("Never", [exited(137)], false), "Failed");
    assert.equal(podPhase("Never", [exited(0), running], false), "Running");
    assert.equal(podPhase("OnFailure", [exited(1)], false), "Running", "it will be restarted");
    assert.equal(podPhase("Always", [exited(0)], false), "Running");
    assert.equal(podPhase("Always", [exited(0)], true), "Succeeded", "deleted: terminal");
    assert.equal(podPhase("Always", [exited(143)], true), "Failed");
    assert.equal(podPhase("Never", [creating], true), "Failed", "deleted before it started");
  });

  test("Ready follows the containers; unchanged conditions keep their transition time", () => {
    const prev = [{ type: "Ready", status: "True", lastTransitionTime: "2020-01-01T00:00:00Z" as never }];
    const ready = podConditions({ phase: "Running", volumesReady: true, containers: [running], startTime: "t" }, prev, "2030-01-01T00:00:00Z");
    const r = ready.find((x) => x.type === "Ready");
    assert.equal(r?.status, "True");
    assert.equal(r?.lastTransitionTime, "2020-01-01T00:00:00Z");
    const done = podConditions({ phase: "Succeeded", volumesReady: true, containers: [exited(0)], startTime: "t" }, ready, "2030-01-01T00:00:01Z");
    const d = done.find((x) => x.type === "Ready");
    assert.equal(d?.status, "False");
    assert.equal(d?.reason, "PodCompleted");
    assert.equal(d?.lastTransitionTime, "2030-01-01T00:00:01Z");
  });
});
