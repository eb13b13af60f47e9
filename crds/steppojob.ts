// The StepPOJob resource: the single source of its OpenAPI schema (written into the CRD) and of the
// TypeScript types every component uses. `steppo run` validates a job file against the same schema
// the API server enforces, plus the cross-field rules the CRD states in CEL (see job-spec.ts).
import * as s from "../common/schema.ts";
import { podTemplateSchema } from "./pod-template.ts";
import { CREDENTIALED_URL_PATTERN, hasUrlCredentials, NATS_CREDENTIALS_HINT } from "../common/secrets.ts";

export const GROUP = "steppo.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "StepPOJob";

export const ESTIMATORS = ["step-gae", "token-gae", "grpo", "gigpo", "rloo", "reinforce++"] as const;
export const RATIO_MODES = ["step", "token"] as const;
export const PRESETS = ["tiny", "small"] as const;
export const ENVIRONMENTS = ["multihop-qa", "paper-search", "textworld", "http"] as const;

const resources = s.object(
  {
    requests: s.map(s.quantity()),
    limits: s.map(s.quantity()),
  },
  { description: "Container resources, as in a Pod spec (nvidia.com/gpu for the learner)." },
);

export const algorithmSchema = s.object(
  {
    estimator: s.enumOf(ESTIMATORS, { default: "step-gae", description: "Advantage estimator from the registry." }),
    ratio: s.enumOf(RATIO_MODES, { default: "step", description: "step: length-normalised step ratio (StepPO); token: per-token ratio." }),
    gamma: s.number({ minimum: 0, maximum: 1, description: "Discount; defaults per estimator (step-gae 0.99 per step, token-gae 1.0 per token)." }),
    lambda: s.number({ minimum: 0, maximum: 1, description: "GAE lambda; defaults per estimator (step-gae 1.0, token-gae 0.95)." }),
    clip: s.number({ minimum: 0, exclusiveMinimum: true, description: "PPO clip range; defaults per ratio mode (see README)." }),
    epochs: s.integer({ default: 2, minimum: 1 }),
    minibatchSteps: s.integer({ default: 64, minimum: 1, description: "Step samples per minibatch." }),
    shuffle: s.object({
      enabled: s.boolean({ default: true }),
      bucketByLength: s.boolean({ default: false, description: "Group minibatches by length to cut padding." }),
    }),
    learningRate: s.number({ default: 3e-4, minimum: 0, exclusiveMinimum: true }),
    entropyCoef: s.number({ default: 0.0, minimum: 0 }),
    klCoef: s.number({ default: 0.0, minimum: 0, description: "Low-variance KL (k3) to the reference (post-warm-up) policy; 0 disables." }),
    valueCoef: s.number({ default: 0.5, minimum: 0 }),
    valueClip: s.number({ minimum: 0, exclusiveMinimum: true, description: "Optional value clipping range." }),
    maxGradNorm: s.number({ default: 1.0, minimum: 0, exclusiveMinimum: true }),
    whitenAdvantages: s.boolean({ default: true }),
    importanceCap: s.number({ default: 2.0, minimum: 1, description: "Cap of the truncated behaviour/proximal importance weight." }),
    criticWarmup: s.object({
      episodes: s.integer({
        default: 256,
        minimum: 0,
        description:
          "Episodes of the starting policy whose Monte-Carlo returns the value head is fitted to (ridge regression on the trunk's features) before the first update; 0 leaves the critic at zero.",
      }),
      ridge: s.number({ default: 0.001, minimum: 0, description: "Ridge penalty of that fit, per value position." }),
    }),
  },
  {
    validations: [
      {
        rule: "!has(self.clip) || self.clip < 1.0",
        message: "clip must be below 1",
        fieldPath: ".clip",
        check: (a) => a.clip === undefined || (a.clip as number) < 1,
      },
    ],
  },
);

export const modelSchema = s.object({
  preset: s.enumOf(PRESETS, { default: "tiny" }),
  dModel: s.integer({ minimum: 8, description: "Overrides the preset's width." }),
  layers: s.integer({ minimum: 1 }),
  heads: s.integer({ minimum: 1 }),
  contextLength: s.integer({ minimum: 16, description: "Tokens of context + action the model sees." }),
});

export const environmentSchema = s.object({
  name: s.enumOf(ENVIRONMENTS, { default: "multihop-qa" }),
  config: s.free({
    description:
      "Environment-specific settings (KB size, families …; http: url, timeoutMs, retries, maxReplyBytes, headers, headersFrom, maxContextWords). " +
      "Credentials never go here in the clear: http headers that carry them come from Secrets through headersFrom.",
  }),
  maxSteps: s.integer({ default: 5, minimum: 1, description: "Step budget; the episode is truncated after it." }),
  maxStepTokens: s.integer({ default: 24, minimum: 2, description: "Action tokens one step may generate before it is cut." }),
  toolLatencyMs: s.array(s.integer({ minimum: 0 }), { description: "Simulated tool latency [min, max] in ms." }),
  bootstrapOnTruncation: s.boolean({
    default: false,
    description: "Bootstrap V(c_T) when the step budget cuts an episode; by default running out of steps is a failure (value 0).",
  }),
});

export const warmupSchema = s.object({
  enabled: s.boolean({ default: true }),
  demonstrations: s.integer({ default: 2000, minimum: 1, description: "Scripted episodes for behaviour cloning." }),
  suboptimalFraction: s.number({ default: 0.4, minimum: 0, maximum: 1, description: "Share of deliberately sub-optimal demonstrations." }),
  epochs: s.integer({ default: 2, minimum: 1 }),
  learningRate: s.number({ default: 1e-3, minimum: 0, exclusiveMinimum: true }),
  minibatchSteps: s.integer({ default: 64, minimum: 1 }),
});

export const rolloutSchema = s.object(
  {
    replicas: s.integer({ default: 1, minimum: 0, description: "Rollout workers (pods on a cluster, in-process locally)." }),
    minReplicas: s.integer({ minimum: 0 }),
    maxReplicas: s.integer({ minimum: 1 }),
    episodesPerUpdate: s.integer({ default: 32, minimum: 1, description: "Episodes in each learner update (the batch)." }),
    groupSize: s.integer({ default: 1, minimum: 1, description: "Episodes per task (GRPO/GiGPO/RLOO groups)." }),
    temperature: s.number({ default: 1.0, minimum: 0, exclusiveMinimum: true }),
    image: s.string(),
    resources,
    template: podTemplateSchema("rollout"),
    autoscale: s.object({
      enabled: s.boolean({ default: false, description: "Let the operator set replicas (within min/maxReplicas) from the learner's demand signals." }),
      stabilizationSeconds: s.integer({ default: 60, minimum: 0, description: "Minimum time between two scaling decisions." }),
      maxStep: s.integer({ default: 2, minimum: 1, description: "Most replicas added or removed by one decision." }),
      starvationSeconds: s.number({
        default: 1,
        minimum: 0,
        description: "The learner is starved (scale up) when it waited longer than this for samples in its last update.",
      }),
      backlogUpdates: s.number({
        default: 2,
        minimum: 0,
        exclusiveMinimum: true,
        description: "The learner is flooded (scale down) when more than this many updates' worth of episodes wait in the stream.",
      }),
    }),
  },
  {
    validations: [
      {
        rule: "!has(self.minReplicas) || self.minReplicas <= self.replicas",
        message: "minReplicas must be <= replicas",
        fieldPath: ".minReplicas",
        check: (r) => r.minReplicas === undefined || (r.minReplicas as number) <= (r.replicas as number),
      },
      {
        rule: "!has(self.maxReplicas) || self.replicas <= self.maxReplicas",
        message: "replicas must be <= maxReplicas",
        fieldPath: ".replicas",
        check: (r) => r.maxReplicas === undefined || (r.replicas as number) <= (r.maxReplicas as number),
      },
      {
        rule: "!self.autoscale.enabled || has(self.maxReplicas)",
        message: "autoscale.enabled needs maxReplicas (the autoscaler never goes above it)",
        fieldPath: ".maxReplicas",
        check: (r) => !(r.autoscale as { enabled?: boolean } | undefined)?.enabled || r.maxReplicas !== undefined,
      },
      {
        rule: "self.episodesPerUpdate % self.groupSize == 0",
        message: "episodesPerUpdate must be a multiple of groupSize",
        fieldPath: ".episodesPerUpdate",
        check: (r) => (r.episodesPerUpdate as number) % (r.groupSize as number) === 0,
      },
    ],
  },
);

export const learnerSchema = s.object({
  image: s.string(),
  resources,
  nodeSelector: s.map(s.string()),
  tolerations: s.array(s.free()),
  backend: s.enumOf(["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu"] as const, {
    default: "auto",
    description: "tfjs backend; auto picks the best installed.",
  }),
  template: podTemplateSchema("learner"),
});

export const trainingSchema = s.object({
  updates: s.integer({ default: 100, minimum: 1, description: "Total learner updates." }),
  maxPolicyLag: s.integer({ default: 0, minimum: 0, description: "Max policy versions a sample may lag; 0 is synchronous." }),
  evalEvery: s.integer({ default: 10, minimum: 1 }),
  evalEpisodes: s.integer({ default: 100, minimum: 1 }),
  successRate: s.number({ minimum: 0, maximum: 1, description: "Stop early once greedy in-domain success reaches this." }),
});

export const checkpointSchema = s.object({
  interval: s.integer({ default: 10, minimum: 1, description: "Checkpoint every N updates." }),
  keep: s.integer({ default: 3, minimum: 1 }),
  dir: s.string({ description: "Local directory (steppo run); the PVC mount path on a cluster." }),
  size: s.string({ default: "1Gi" }),
  storageClassName: s.string(),
  existingClaim: s.string(),
});

export const natsSchema = s.object(
  {
    url: s.string({
      // Bounded so that the API server can afford the CEL rule below on it.
      maxLength: 4096,
      description: "nats:// URL (or a comma-separated list) without credentials; steppo run embeds an in-memory bus when absent.",
    }),
    credentialsSecret: s.string({
      description: "Secret holding a NATS creds file (key `nats.creds`), mounted into every pod: the only way to give NATS credentials.",
    }),
  },
  {
    validations: [
      {
        // The job is readable by the `view` role and copied into a ConfigMap and env vars: no password here.
        rule: `!has(self.url) || !self.url.matches('${CREDENTIALED_URL_PATTERN}')`,
        message: `url must not contain credentials (user:password@ or token@); ${NATS_CREDENTIALS_HINT}`,
        fieldPath: ".url",
        check: (n) => n.url === undefined || !hasUrlCredentials(n.url as string),
      },
    ],
  },
);

export const runPolicySchema = s.object({
  backoffLimit: s.integer({ default: 3, minimum: 0 }),
  activeDeadlineSeconds: s.integer({ minimum: 1 }),
  ttlSecondsAfterFinished: s.integer({ minimum: 0 }),
  cleanPodPolicy: s.enumOf(["All", "Running", "None"] as const, { default: "Running" }),
  suspend: s.boolean({ default: false }),
});

export const specSchema = s.object({
  seed: s.integer({ default: 1, minimum: 0 }),
  algorithm: algorithmSchema,
  model: modelSchema,
  environment: environmentSchema,
  warmup: warmupSchema,
  rollout: rolloutSchema,
  learner: learnerSchema,
  training: trainingSchema,
  checkpoint: checkpointSchema,
  nats: natsSchema,
  runPolicy: runPolicySchema,
});

export const metadataSchema = s.object(
  {
    name: s.string({ minLength: 1, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" }),
    namespace: s.string(),
    labels: s.map(s.string()),
    annotations: s.map(s.string()),
  },
  { required: ["name"] },
);

export const jobSchema = s.object(
  {
    apiVersion: s.string(),
    kind: s.string(),
    metadata: metadataSchema,
    spec: specSchema,
  },
  { required: ["apiVersion", "kind", "metadata"] },
);

export type StepPOJobSpec = s.Static<typeof specSchema>;
export type StepPOJob = s.Static<typeof jobSchema>;
export type AlgorithmSpec = StepPOJobSpec["algorithm"];
export type ModelSpec = StepPOJobSpec["model"];
export type EnvironmentSpec = StepPOJobSpec["environment"];
export type RolloutSpec = StepPOJobSpec["rollout"];
export type Estimator = (typeof ESTIMATORS)[number];
export type RatioMode = (typeof RATIO_MODES)[number];
