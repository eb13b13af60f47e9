// The operator's OpenTelemetry spans (one per reconcile, reconciler.ts) exported over OTLP/HTTP when an
// endpoint is set (`--otlp-endpoint`, STEPPO_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT): a tracer provider
// registered as the global one, so the tracer the reconciler took at import time starts exporting. Without an
// endpoint nothing is registered and the API's tracers stay no-ops.
import { trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { redactUrl } from "../crds/secrets.ts";

export interface OperatorTracing {
  /** Flushes the spans still buffered and unregisters the provider. */
  shutdown(): Promise<void>;
}

export function startOperatorTracing(endpoint: string, o: { instance: string; log: (m: string) => void; scheduledDelayMs?: number }): OperatorTracing {
  const url = `${endpoint.replace(/\/+$/, "")}/v1/traces`;
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "steppo-operator", "service.instance.id": o.instance }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: o.scheduledDelayMs ?? 5000 })],
  });
  if (!trace.setGlobalTracerProvider(provider)) o.log("tracing: a global tracer provider is already registered; the operator's spans go there");
  else o.log(`tracing: exporting spans to ${redactUrl(url)}`);
  return {
    async shutdown() {
      await provider.shutdown().catch((err) => o.log(`tracing: flushing spans failed: ${(err as Error).message}`));
      trace.disable();
    },
  };
}
