// A client whose NATS server is not up says so (and where) instead of waiting silently, then connects
// once the server answers: a real nats-server, stopped first and started again on the same port.
import assert from "node:assert/strict";
import { test } from "node:test";
import { connectNats } from "../../runtime/nats/connection.ts";
import { NatsServer } from "../support/nats-server.ts";
import { pollUntil } from "../support/poll.ts";

/** Resolves once `predicate` holds, polling every 20 ms; rejects after `timeoutMs`. */
const until = (predicate: () => boolean, timeoutMs: number, what: string): Promise<true> => pollUntil(what, timeoutMs, () => predicate() || undefined, 20);

test("the first connect says it is retrying, and where, while the server is unreachable", { timeout: 60_000 }, async () => {
  const server = await NatsServer.start();
  try {
    await server.stop();
    const lines: string[] = [];
    const connecting = connectNats({ servers: server.url, name: "worker-w1", log: (l) => lines.push(l), firstConnectNoticeMs: 100 });
    await until(() => lines.length > 0, 10_000, "the retry notice");
    assert.equal(lines[0], `worker-w1: cannot reach NATS at ${server.url} yet; retrying until it answers (check the URL and that the server is up)`);
    await server.restart();
    const nc = await connecting;
    assert.equal(nc.isClosed(), false);
    await nc.close();
  } finally {
    await server.dispose();
  }
});
