// Observability of the learner and worker processes: OpenTelemetry metrics served as Prometheus text on
// /metrics (beside /healthz and /readyz) over express, and OpenTelemetry spans exported over OTLP/HTTP when
// an endpoint is configured (otherwise spans are no-ops and cost nothing).
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Meter, type Tracer, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import express, { type Express } from "express";
import { redactUrl } from "../crds/secrets.ts";

export interface TelemetryOptions {
  /** `steppo-learner` or `steppo-worker`. */
  service: string;
  /** Worker id / job name: becomes the service.instance.id resource attribute. */
  instance: string;
  job: string;
  /** Port for /metrics, /healthz, /readyz; 0 picks a free one; undefined serves nothing. */
  port?: number;
  host?: string;
  /** OTLP/HTTP base URL (e.g. http://collector:4318); spans are exported only when set. */
  otlpEndpoint?: string;
  log: (line: string) => void;
  /** More routes on the same server (the learner's run dashboard). */
  routes?: (app: Express) => void;
}

export interface Telemetry {
  meter: Meter;
  tracer: Tracer;
  /** The port actually listened on (undefined when not serving). */
  port?: number;
  /** /readyz answers 200 only while ready (connected and initialised). */
  setReady(ready: boolean, reason?: string): void;
  /** /healthz answers 503 after this (a fatal error the process cannot recover from). */
  setUnhealthy(reason: string): void;
  close(): Promise<void>;
}

export async function startTelemetry(opts: TelemetryOptions): Promise<Telemetry> {
  const resource = resourceFromAttributes({ "service.name": opts.service, "service.instance.id": opts.instance, "steppo.job": opts.job });
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ resource, readers: [exporter] });
  const meter = meterProvider.getMeter("steppo");

  let tracerProvider: BasicTracerProvider | undefined;
  if (opts.otlpEndpoint) {
    const url = `${opts.otlpEndpoint.replace(/\/+$/, "")}/v1/traces`;
    tracerProvider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))] });
    opts.log(`tracing: exporting spans to ${redactUrl(url)}`);
  }
  // Without a provider the API hands out no-op tracers.
  const tracer = tracerProvider ? tracerProvider.getTracer("steppo") : trace.getTracer("steppo");

  let ready = false;
  let notReady = "starting";
  let unhealthy: string | undefined;
  let server: Server | undefined;
  let port: number | undefined;
  if (opts.port !== undefined) {
    const app = express();
    app.disable("x-powered-by");
    app.get("/healthz", (_req, res) => {
      if (unhealthy) res.status(503).type("text/plain").send(`unhealthy: ${unhealthy}\n`);
      else res.type("text/plain").send("ok\n");
    });
    app.get("/readyz", (_req, res) => {
      if (ready && !unhealthy) res.type("text/plain").send("ready\n");
      else
        res
          .status(503)
          .type("text/plain")
          .send(`not ready: ${unhealthy ?? notReady}\n`);
    });
    app.get("/metrics", (req, res) => exporter.getMetricsRequestHandler(req, res));
    opts.routes?.(app);
    server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(opts.port as number, opts.host ?? "0.0.0.0", (err?: Error) => (err ? reject(err) : resolve(s)));
      s.once("error", reject);
    });
    port = (server.address() as AddressInfo).port;
    opts.log(`metrics: serving /metrics, /healthz, /readyz on port ${port}`);
  }

  return {
    meter,
    tracer,
    port,
    setReady(r, reason) {
      ready = r;
      notReady = reason ?? (r ? "" : "not ready");
    },
    setUnhealthy(reason) {
      unhealthy = reason;
    },
    async close() {
      if (server) {
        const s = server;
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        s.closeAllConnections();
        await closed;
      }
      await tracerProvider?.shutdown().catch(() => {});
      await meterProvider.shutdown().catch(() => {});
    },
  };
}

/** Runs `fn` inside a span named `name`; the span records an exception and ends either way. */
export async function withSpan<T>(tracer: Tracer, name: string, attributes: Record<string, string | number | boolean>, fn: () => Promise<T> | T): Promise<T> {
  const span = tracer.startSpan(name, { attributes });
  try {
    return await fn();
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: 2, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}
