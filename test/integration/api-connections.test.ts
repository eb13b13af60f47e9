// The operator's API clients against a REAL kube-apiserver over TLS: client-node 2.0.1 opens a new TLS
// connection for every request made through kc.makeApiClient; the operator's clients (operator/kube.ts,
// SharedConnections) keep one pool for all of them. Connections are counted where undici makes them: its
// diagnostics channel `undici:client:connected`, which every copy of undici in the process publishes to.
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { after, before, describe, test } from "node:test";
import { CoreV1Api } from "@kubernetes/client-node";
import { loadKubeConfig, makeClients } from "../../operator/kube.ts";
import { startTestCluster, type TestCluster } from "../cluster/cluster.ts";

let cluster: TestCluster;

/** How many connections `work` opened. */
async function connectionsOpenedBy(work: () => Promise<unknown>): Promise<number> {
  let opened = 0;
  const count = () => {
    opened++;
  };
  subscribe("undici:client:connected", count);
  try {
    await work();
  } finally {
    unsubscribe("undici:client:connected", count);
  }
  return opened;
}

describe("API connections: one pool for every request", () => {
  before(async () => {
    cluster = await startTestCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  test("sequential and concurrent requests reuse the operator's pool; client-node's own clients connect per request", async () => {
    const kc = loadKubeConfig(cluster.kubeconfigPath);
    const clients = makeClients(kc);
    const list = () => clients.core.listNamespacedConfigMap({ namespace: "default" });
    const sequential = async (n: number) => {
      for (let i = 0; i < n; i++) await list();
    };
    // The pool's first requests open it (undici opens a second connection on the second request here).
    const warming = await connectionsOpenedBy(() => sequential(3));
    assert.ok(warming >= 1 && warming <= 2, `the first 3 requests opened ${warming} connections`);
    assert.equal(await connectionsOpenedBy(() => sequential(20)), 0, "20 more sequential requests opened connections");
    // HTTP/1.1: 8 requests in flight at once open up to 8 connections, which then stay in the pool.
    await Promise.all(Array.from({ length: 8 }, list));
    // Again: most find a pooled connection (a few may be dispatched before the last response has freed one).
    const again = await connectionsOpenedBy(() => Promise.all(Array.from({ length: 8 }, list)));
    assert.ok(again < 8, `8 more concurrent requests opened ${again} connections: the pool kept none`);
    // The baseline the pool exists for: if client-node ever pools by itself, this documents it.
    const plain = kc.makeApiClient(CoreV1Api);
    const unpooled = await connectionsOpenedBy(async () => {
      for (let i = 0; i < 5; i++) await plain.listNamespacedConfigMap({ namespace: "default" });
    });
    assert.equal(unpooled, 5, "client-node 2.x's own clients open a connection per request");
  });

  test("a kubeconfig switched to another user builds a new pool; requests still succeed", async () => {
    const kc = loadKubeConfig(cluster.kubeconfigPath);
    const clients = makeClients(kc);
    await clients.core.listNamespacedConfigMap({ namespace: "default" });
    const user = kc.getCurrentUser();
    assert.ok(user);
    // Same credentials under another name: another user object, so another key and a fresh pool.
    kc.users = kc.users.map((u) => (u === user ? { ...u, name: `${u.name}-renamed` } : u));
    kc.contexts = kc.contexts.map((c) => (c.name === kc.currentContext ? { ...c, user: `${user.name}-renamed` } : c));
    const opened = await connectionsOpenedBy(async () => {
      for (let i = 0; i < 10; i++) await clients.core.listNamespacedConfigMap({ namespace: "default" });
    });
    assert.ok(opened >= 1 && opened <= 2, `10 requests after the switch opened ${opened} connections: a new pool, then reused`);
  });
});
