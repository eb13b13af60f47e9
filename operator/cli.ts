// `steppo operator`: runs one operator replica until SIGTERM, or until it loses the leader lease (then it
// exits non-zero and Kubernetes restarts it as a fresh candidate, as client-go operators do).
import { hostname } from "node:os";
import { intFlag, parseFlags, UsageError } from "../core/args.ts";
import { checkNatsUrl, ENV } from "../core/process-config.ts";
import { clusterIdProblem } from "../core/nats-names.ts";
import { MAX_REPLICAS } from "../crds/steppojob.ts";
import { DEFAULT_MAX_REPLICAS, DEFAULTS } from "./desired.ts";
import { LOG_FORMATS, type LogFormat } from "./log.ts";
import { startOperator } from "./operator.ts";

export async function cmdOperator(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    kubeconfig: { type: "string" },
    namespace: { type: "string" },
    port: { type: "string" },
    workers: { type: "string" },
    "no-leader-elect": { type: "boolean" },
    "lease-namespace": { type: "string" },
    "lease-name": { type: "string" },
    image: { type: "string" },
    nats: { type: "string" },
    "nats-creds": { type: "string" },
    "cluster-id": { type: "string" },
    "max-replicas": { type: "string" },
    "log-format": { type: "string" },
    "otlp-endpoint": { type: "string" },
  });
  const logFormat = ((values["log-format"] as string | undefined) ?? process.env.STEPPO_LOG_FORMAT ?? "text") as LogFormat;
  if (!LOG_FORMATS.includes(logFormat)) throw new UsageError(`operator: --log-format must be one of ${LOG_FORMATS.join(", ")}, got "${logFormat}"`);
  const otlpEndpoint = (values["otlp-endpoint"] as string | undefined) ?? process.env[ENV.otlpEndpoint] ?? process.env[ENV.otelEndpoint];
  const natsUrl = (values.nats as string | undefined) ?? DEFAULTS.natsUrl;
  // The default URL goes into every pod's env: it must not carry a password (--nats-creds is the way).
  checkNatsUrl(natsUrl, "operator --nats");
  const clusterId = (values["cluster-id"] as string | undefined) ?? process.env.STEPPO_CLUSTER_ID ?? "";
  const problem = clusterIdProblem(clusterId);
  if (problem) throw new UsageError(`operator: --cluster-id / STEPPO_CLUSTER_ID: ${problem}`);
  const maxReplicas = intFlag(values["max-replicas"], "max-replicas") ?? DEFAULT_MAX_REPLICAS;
  if (maxReplicas < 1 || maxReplicas > MAX_REPLICAS) throw new UsageError(`operator: --max-replicas must be between 1 and ${MAX_REPLICAS} (the CRD's maximum)`);
  const leaseNs = (values["lease-namespace"] as string | undefined) ?? process.env.POD_NAMESPACE ?? "default";
  const op = await startOperator({
    kubeconfig: values.kubeconfig as string | undefined,
    namespace: values.namespace as string | undefined,
    port: intFlag(values.port, "port") ?? 8080,
    workers: intFlag(values.workers, "workers"),
    defaults: {
      image: (values.image as string | undefined) ?? DEFAULTS.image,
      natsUrl,
      clusterId,
      maxReplicas,
    },
    leaderElection: values["no-leader-elect"] ? false : { namespace: leaseNs, name: values["lease-name"] as string | undefined },
    identity: process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
    natsCredsFile: (values["nats-creds"] as string | undefined) ?? process.env.STEPPO_NATS_CREDS_FILE,
    logFormat,
    ...(otlpEndpoint ? { otlpEndpoint } : {}),
  });
  process.stderr.write(`steppo operator ${op.identity}: serving probes and metrics on :${op.port}\n`);
  const signalled = new Promise<number>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(0));
  });
  const lost = op.lostLeadership.then(() => 1);
  const code = await Promise.race([signalled, lost]);
  await op.stop();
  return code;
}
