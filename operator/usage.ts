// `steppo operator`'s help text, apart from the command so `steppo help` does not load the Kubernetes client.
export const OPERATOR_USAGE = `  operator              run the StepPOJob operator (in-cluster config, or KUBECONFIG / --kubeconfig)
      --kubeconfig FILE   kubeconfig to use
      --namespace NS      watch one namespace (default: all)
      --port N            /healthz, /readyz, /metrics port (default 8080)
      --workers N         concurrent reconciles (default 2)
      --no-leader-elect   run without the leader Lease (one replica only)
      --lease-namespace NS  namespace of the Lease (default POD_NAMESPACE or default)
      --lease-name NAME   name of the Lease (default steppo-operator; the chart uses the release's name)
      --image IMAGE       default image for jobs that name none
      --nats URL          default NATS URL for jobs that name none
      --nats-creds FILE   NATS credentials the operator uses to read learner progress (KV)
      --cluster-id ID     this cluster's id (or STEPPO_CLUSTER_ID; default none), part of every job's NATS
                          names: needed when operators of several clusters share one NATS server
      --max-replicas N    most rollout replicas (and maxReplicas) a job may ask for (default 256, at most 1000);
                          a job above it fails with the ReplicasOverLimit condition, nothing created
      --log-format F      text (default) or json: one object per line with time, level, component, job
                          (or STEPPO_LOG_FORMAT)
      --otlp-endpoint URL export reconcile spans over OTLP/HTTP (or STEPPO_OTLP_ENDPOINT /
                          OTEL_EXPORTER_OTLP_ENDPOINT; default: no tracing)
`;
