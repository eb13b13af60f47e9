// The operator's HTTP endpoints for the kubelet and Prometheus: /healthz (the process is alive),
// /readyz (informer caches synced while leading, or standing by as a healthy non-leader), /metrics.
import type { Server } from "node:http";
import express from "express";
import type { OperatorMetrics } from "./metrics.ts";

export interface ProbeState {
  /** Ready to serve its role: a leader whose caches are synced, or a standby. */
  ready: () => boolean;
}

export function startServer(port: number, metrics: OperatorMetrics, probes: ProbeState, host = "0.0.0.0"): Promise<{ server: Server; port: number }> {
  const app = express();
  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok");
  });
  app.get("/readyz", (_req, res) => {
    const ok = probes.ready();
    res
      .status(ok ? 200 : 503)
      .type("text/plain")
      .send(ok ? "ok" : "informer caches not synced");
  });
  app.get("/metrics", (_req, res) => {
    res.type("text/plain; version=0.0.4").send(metrics.render());
  });
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => {
      const addr = server.address();
      resolve({ server, port: typeof addr === "object" && addr ? addr.port : port });
    });
    server.on("error", reject);
  });
}
