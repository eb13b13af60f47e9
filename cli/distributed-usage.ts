// Usage text of the distributed commands, apart from their code so that `steppo help` and the commands that
// do not train (operator, validate) load none of it (the learner pulls in tfjs and its wasm backend).
export const RUN_NATS_USAGE = `  run <job.yaml> --nats URL [--workers N]
                        the same job as separate processes: one learner and N rollout workers
                        (default spec.rollout.replicas) meeting through the NATS server at URL;
                        --updates, --run-dir, --summary, --fresh, --warm-start, --env-step-budget as without --nats
`;
export const LEARNER_USAGE = `  learner               the learner process (a learner pod): --job FILE --nats URL
      --checkpoint-dir DIR, --run-dir DIR, --updates N, --summary FILE, --metrics-port P, --nats-creds FILE, --fresh,
      --warm-start DIR, --env-step-budget N,
      --namespace NS, --cluster-id ID (the job's NATS names are per cluster id, namespace and name)
`;
export const WORKER_USAGE = `  worker                a rollout worker process (a rollout pod): --job FILE --nats URL --id ID
      --metrics-port P, --nats-creds FILE, --namespace NS, --cluster-id ID
`;
export const PROCESS_ENV_USAGE = `    environment: STEPPO_JOB_FILE, STEPPO_NATS_URL, STEPPO_NATS_CREDS_FILE, STEPPO_WORKER_ID (default: hostname),
    STEPPO_NAMESPACE (default: the job file's metadata.namespace, else "default"), STEPPO_CLUSTER_ID (default none),
    STEPPO_CHECKPOINT_DIR, STEPPO_RUN_DIR, STEPPO_METRICS_PORT (default 9464; 0 any, "off" none),
    STEPPO_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT (spans over OTLP/HTTP),
    STEPPO_ACK_WAIT_MS, STEPPO_ADMISSION_LEASE_MS, STEPPO_SHUTDOWN_TIMEOUT_MS (worker; default 20000) (see docs/distributed.md)
`;
export const DISTRIBUTED_USAGE = RUN_NATS_USAGE + LEARNER_USAGE + WORKER_USAGE + PROCESS_ENV_USAGE;
