// The run dashboard over express: a static page (runtime/dashboard/static/) with uPlot served from
// node_modules (no CDN, no build step), and a JSON API that re-reads the run files on every request.
// Mounted on the learner's telemetry server (beside /metrics) or on a server of its own (`steppo ui`,
// `steppo run --ui`).
import type { Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import express, { type Express } from "express";
import { readEpisodeFile, readSources } from "./run-source.ts";

const STATIC_DIR = join(import.meta.dirname, "static");

/** Adds the dashboard's routes: `/` (the page), `/dashboard/*` (its files), `/api/runs*` (the data). */
export function mountDashboard(app: Express, sources: string[]): void {
  app.get("/", (_req, res) => {
    res.sendFile(join(STATIC_DIR, "index.html"));
  });
  // Resolved here, not at import: the CLI imports this module for every command.
  const uplotDist = dirname(createRequire(import.meta.url).resolve("uplot")); // node_modules/uplot/dist
  app.use("/dashboard/vendor/uplot", express.static(uplotDist, { index: false }));
  app.use("/dashboard", express.static(STATIC_DIR, { index: false }));
  app.get("/api/runs", (_req, res) => {
    res.set("cache-control", "no-store");
    try {
      res.json({ sources, runs: readSources(sources) });
    } catch (err) {
      res.status(500).json({ error: `reading the runs failed: ${(err as Error).message}` });
    }
  });
  app.get("/api/runs/:id/episodes/:update", (req, res) => {
    res.set("cache-control", "no-store");
    const update = Number(req.params.update);
    const view = readSources(sources).find((v) => v.id === req.params.id);
    if (!view) {
      res.status(404).json({ error: `no run with id ${req.params.id}` });
      return;
    }
    if (!Number.isInteger(update) || update < 0) {
      res.status(400).json({ error: `update must be a non-negative integer, got "${req.params.update}"` });
      return;
    }
    const { value, problem } = readEpisodeFile(view, update);
    if (problem) res.status(404).json({ error: problem });
    else res.json(value);
  });
}

export interface DashboardServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A server of the dashboard's own; 127.0.0.1 unless told otherwise (0.0.0.0 inside a pod). */
export async function startDashboard(opts: { sources: string[]; port: number; host?: string }): Promise<DashboardServer> {
  const app = express();
  app.disable("x-powered-by");
  mountDashboard(app, opts.sources);
  const host = opts.host ?? "127.0.0.1";
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(opts.port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once("error", reject);
  });
  const port = (server.address() as AddressInfo).port;
  // 0.0.0.0 listens everywhere, but a browser on this machine reaches it at 127.0.0.1.
  const shownHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
