// The StepPOJob resource: the single source of its OpenAPI schema (written into the CRD) and of the
// TypeScript types every component uses. `steppo run` validates a job file against the same schema
// the API server enforces, plus the cross-field rules the CRD states in CEL (see job-spec.ts).
import * as s from "./schema.ts";
import { podTemplateSchema } from "./pod-template.ts";
import { modelVolumeRules, modelVolumeSchema, templateModelRules } from "./model-volume.ts";
import { CREDENTIALED_URL_PATTERN, hasUrlCredentials, NATS_CREDENTIALS_HINT } from "./secrets.ts";
import { jobNameValidation } from "./names.ts";
import { MAX_REPLICAS } from "./constants.ts";

export { API_VERSION, GROUP, KIND, MAX_REPLICAS, VERSION } from "./constants.ts";

export const ESTIMATORS = ["step-gae", "token-gae", "grpo", "gigpo", "rloo", "reinforce++"] as const;
export const RATIO_MODES = ["step", "token"] as const;
export const PRESETS = ["tiny", "small"] as const;
export const ENVIRONMENTS = ["multihop-qa", "paper-search", "textworld", "http"] as const;
export const CRITICS = ["shared", "separate"] as const;

// Upper bounds of the numeric fields. Every number has a finite range, enforced by the CRD (OpenAPI
// maximum) and by the loader alike, so that a typo such as `replicas: 1e7` is refused up front instead of
// exhausting memory minutes later; the limits are far above what a job on this stack sensibly uses.
export const MAX_UPDATES = 1_000_000;
const ONE_YEAR_SECONDS = 365 * 24 * 3600;
/** Tokens the context must keep after the longest action (workers/agent-loop.ts refuses less). */
export const MIN_CONTEXT_TOKENS = 8;

/** Model sizes by `spec.model.preset` (policy/model.ts builds them; here so that rules can default them). */
export const MODEL_PRESETS = {
  tiny: { dModel: 64, layers: 2, heads: 4, contextLength: 128 },
  small: { dModel: 128, layers: 4, heads: 4, contextLength: 192 },
} as const satisfies Record<(typeof PRESETS)[number], { dModel: number; layers: number; heads: number; contextLength: number }>;

type PresetField = keyof (typeof MODEL_PRESETS)["tiny"];

/** CEL for a model field with its preset's value when it is not set (`self` is spec.model). */
function presetCel(field: PresetField): string {
  const [first, ...others] = PRESETS;
  const byPreset = others.reduceRight((rest, p) => `(self.preset == '${p}' ? ${MODEL_PRESETS[p][field]} : ${rest})`, String(MODEL_PRESETS[first][field]));
  return `(has(self.${field}) ? self.${field} : ${byPreset})`;
}

/**
 * The same, locally, on a defaulted spec.model; undefined when the model is malformed (its own errors
 * are reported already, so a cross-field rule must not add a confusing one).
 */
function presetValue(model: unknown, field: PresetField): number | undefined {
  if (typeof model !== "object" || model === null) return undefined;
  const m = model as Record<string, unknown>;
  const preset = Object.hasOwn(MODEL_PRESETS, m.preset as string) ? MODEL_PRESETS[m.preset as (typeof PRESETS)[number]] : undefined;
  const v = m[field] ?? preset?.[field];
  return typeof v === "number" && Number.isSafeInteger(v) ? v : undefined;
}

/** `rule(values)` when every value is known, else true (see presetValue). */
function whenKnown(values: (number | undefined)[], rule: (v: number[]) => boolean): boolean {
  return values.every((v) => v !== undefined) ? rule(values as number[]) : true;
}

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
    clip: s.number({ minimum: 0, exclusiveMinimum: true, maximum: 1, description: "PPO clip range; defaults per ratio mode (see README)." }),
    epochs: s.integer({ default: 2, minimum: 1, maximum: 100 }),
    minibatchSteps: s.integer({ default: 64, minimum: 1, maximum: 65536, description: "Step samples per minibatch." }),
    shuffle: s.object({
      enabled: s.boolean({ default: true }),
      bucketByLength: s.boolean({ default: false, description: "Group minibatches by length to cut padding." }),
    }),
    learningRate: s.number({ default: 3e-4, minimum: 0, exclusiveMinimum: true, maximum: 1 }),
    criticLearningRate: s.number({
      minimum: 0,
      exclusiveMinimum: true,
      maximum: 1,
      description:
        "The critic's learning rate; defaults to learningRate (the StepPO authors train their critic at 10x the actor's). With model.critic shared only the value head takes it (the trunk learns from both losses at learningRate); with separate, the whole critic network.",
    }),
    entropyCoef: s.number({ default: 0.0, minimum: 0, maximum: 10 }),
    klCoef: s.number({ default: 0.0, minimum: 0, maximum: 100, description: "Low-variance KL (k3) to the reference (post-warm-up) policy; 0 disables." }),
    valueCoef: s.number({
      default: 0.5,
      minimum: 0,
      maximum: 100,
      description: "The value loss's weight beside the policy loss on the shared trunk; unused with model.critic separate (the critic has its own optimiser).",
    }),
    valueClip: s.number({ minimum: 0, exclusiveMinimum: true, maximum: 1000, description: "Optional value clipping range." }),
    maxGradNorm: s.number({ default: 1.0, minimum: 0, exclusiveMinimum: true, maximum: 1000 }),
    whitenAdvantages: s.boolean({ default: true }),
    importanceCap: s.number({ default: 2.0, minimum: 1, maximum: 100, description: "Cap of the truncated behaviour/proximal importance weight." }),
    criticWarmup: s.object({
      episodes: s.integer({
        default: 256,
        minimum: 0,
        maximum: 100_000,
        description:
          "Episodes of the starting policy whose Monte-Carlo returns the value head is fitted to (ridge regression on the trunk's features) before the first update; 0 leaves the critic at zero.",
      }),
      ridge: s.number({ default: 0.001, minimum: 0, maximum: 1000, description: "Ridge penalty of that fit, per value position." }),
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

/** What spec.model.lora may adapt: policy/hf/lora.ts's LORA_TARGETS (checked equal in test/unit/job-limits.test.ts). */
export const LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

/** The architecture fields that spec.model.source's config.json decides instead. */
const SOURCE_DECIDES = ["dModel", "layers", "heads"] as const;

export const modelSchema = s.object(
  {
    source: s.string({
      minLength: 1,
      maxLength: 1024,
      description:
        "A directory in the Hugging Face layout (config.json, *.safetensors, tokenizer.json) as the pods see it, e.g. a mounted volume: " +
        "a Llama or Qwen2 causal LM and its tokenizer as the policy (policy/hf/; docs/hf-models.md). The learner and every rollout worker load it: " +
        "on Kubernetes, name the volume holding it in volume and the operator mounts that at this path in both pods, or mount it through both pod templates (spec.learner.template, spec.rollout.template). steppo run reads it as a local path.",
    }),
    volume: modelVolumeSchema,
    lora: s.object(
      {
        rank: s.integer({ minimum: 1, maximum: 1024, description: "The adapters' rank r." }),
        alpha: s.number({ minimum: 0, exclusiveMinimum: true, maximum: 65536, description: "The scale α: updates add (α/r)·B·A to each adapted weight." }),
        targetModules: s.array(s.enumOf(LORA_TARGET_MODULES), { maxItems: LORA_TARGET_MODULES.length, description: "The projections adapted in every layer." }),
      },
      {
        required: ["rank", "alpha", "targetModules"],
        description: "LoRA on spec.model.source's model: its loaded weights stay frozen, only the adapters and the value head train.",
      },
    ),
    preset: s.enumOf(PRESETS, { default: "tiny" }),
    critic: s.enumOf(CRITICS, {
      default: "shared",
      description:
        "shared: the critic is a value head on the policy's trunk, trained by the PPO loss's value term. " +
        "separate: a second network of the same architecture, initialised from the policy after the warm-up, trained on the value loss alone " +
        "with its own Adam at algorithm.criticLearningRate (as the StepPO authors do); costs a second model's memory and its forward and backward pass per minibatch.",
    }),
    dModel: s.integer({ minimum: 8, maximum: 1024, description: "Overrides the preset's width." }),
    layers: s.integer({ minimum: 1, maximum: 48 }),
    heads: s.integer({ minimum: 1, maximum: 64 }),
    contextLength: s.integer({ minimum: 16, maximum: 4096, description: "Tokens of context + action the model sees." }),
  },
  {
    validations: [
      {
        // Attention splits the width evenly across heads (policy/model.ts).
        rule: `${presetCel("dModel")} % ${presetCel("heads")} == 0`,
        message: "dModel must be divisible by heads (with the preset's value for whichever is not set)",
        fieldPath: ".dModel",
        check: (m) => whenKnown([presetValue(m, "dModel"), presetValue(m, "heads")], ([d, h]) => d % h === 0),
      },
      {
        // Nothing is downloaded: no model hub need be reachable from a cluster, and a path is what a pod mounts.
        rule: "!has(self.source) || !self.source.contains('://')",
        message: "source is a directory path inside the pods (a mounted volume); URLs and model hub downloads are not fetched",
        fieldPath: ".source",
        check: (m) => typeof m.source !== "string" || !m.source.includes("://"),
      },
      {
        rule: "!has(self.lora) || has(self.source)",
        message: "lora adapts a Hugging Face model: it needs source",
        fieldPath: ".lora",
        check: (m) => m.lora === undefined || m.source !== undefined,
      },
      {
        rule: `!has(self.source) || ${SOURCE_DECIDES.map((f) => `!has(self.${f})`).join(" && ")}`,
        message: `source takes the architecture from its config.json: ${SOURCE_DECIDES.join(", ")} cannot be set beside it`,
        fieldPath: ".source",
        check: (m) => m.source === undefined || SOURCE_DECIDES.every((f) => m[f] === undefined),
      },
      ...modelVolumeRules,
    ],
  },
);

export const environmentSchema = s.object({
  name: s.enumOf(ENVIRONMENTS, { default: "multihop-qa" }),
  config: s.free({
    description:
      "Environment-specific settings (KB size, families …; http: url, timeoutMs, retries, maxReplyBytes, headers, headersFrom, maxContextWords). " +
      "Credentials never go here in the clear: http headers that carry them come from Secrets through headersFrom.",
  }),
  maxSteps: s.integer({ default: 5, minimum: 1, maximum: 100, description: "Step budget; the episode is truncated after it." }),
  maxStepTokens: s.integer({ default: 24, minimum: 2, maximum: 1024, description: "Action tokens one step may generate before it is cut." }),
  toolLatencyMs: s.array(s.integer({ minimum: 0, maximum: 60_000 }), { description: "Simulated tool latency [min, max] in ms." }),
  bootstrapOnTruncation: s.boolean({
    default: false,
    description: "Bootstrap V(c_T) when the step budget cuts an episode; by default running out of steps is a failure (value 0).",
  }),
});

export const warmupSchema = s.object({
  enabled: s.boolean({ default: true }),
  demonstrations: s.integer({ default: 2000, minimum: 1, maximum: 1_000_000, description: "Scripted episodes for behaviour cloning." }),
  suboptimalFraction: s.number({ default: 0.4, minimum: 0, maximum: 1, description: "Share of deliberately sub-optimal demonstrations." }),
  epochs: s.integer({ default: 2, minimum: 1, maximum: 100 }),
  learningRate: s.number({ default: 1e-3, minimum: 0, exclusiveMinimum: true, maximum: 1 }),
  minibatchSteps: s.integer({ default: 64, minimum: 1, maximum: 65536 }),
});

export const rolloutSchema = s.object(
  {
    replicas: s.integer({
      default: 1,
      minimum: 0,
      maximum: MAX_REPLICAS,
      description: "Rollout workers (pods on a cluster, in-process locally); the operator may have a lower limit (--max-replicas).",
    }),
    minReplicas: s.integer({ minimum: 0, maximum: MAX_REPLICAS }),
    maxReplicas: s.integer({ minimum: 1, maximum: MAX_REPLICAS }),
    episodesPerUpdate: s.integer({ default: 32, minimum: 1, maximum: 100_000, description: "Episodes in each learner update (the batch)." }),
    groupSize: s.integer({ default: 1, minimum: 1, maximum: 1024, description: "Episodes per task (GRPO/GiGPO/RLOO groups)." }),
    temperature: s.number({ default: 1.0, minimum: 0, exclusiveMinimum: true, maximum: 100 }),
    image: s.string(),
    resources,
    template: podTemplateSchema("rollout"),
    autoscale: s.object({
      enabled: s.boolean({ default: false, description: "Let the operator set replicas (within min/maxReplicas) from the learner's demand signals." }),
      stabilizationSeconds: s.integer({ default: 60, minimum: 0, maximum: 86_400, description: "Minimum time between two scaling decisions." }),
      maxStep: s.integer({ default: 2, minimum: 1, maximum: MAX_REPLICAS, description: "Most replicas added or removed by one decision." }),
      starvationSeconds: s.number({
        default: 1,
        minimum: 0,
        maximum: 3600,
        description: "The learner is starved (scale up) when it waited longer than this for samples in its last update.",
      }),
      backlogUpdates: s.number({
        default: 2,
        minimum: 0,
        exclusiveMinimum: true,
        maximum: 1000,
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
  updates: s.integer({ default: 100, minimum: 1, maximum: MAX_UPDATES, description: "Total learner updates." }),
  maxPolicyLag: s.integer({ default: 0, minimum: 0, maximum: 1000, description: "Max policy versions a sample may lag; 0 is synchronous." }),
  evalEvery: s.integer({ default: 10, minimum: 1, maximum: MAX_UPDATES }),
  evalEpisodes: s.integer({ default: 100, minimum: 1, maximum: 100_000 }),
  successRate: s.number({ minimum: 0, maximum: 1, description: "Stop early once greedy in-domain success reaches this." }),
});

export const checkpointSchema = s.object({
  interval: s.integer({ default: 10, minimum: 1, maximum: MAX_UPDATES, description: "Checkpoint every N updates." }),
  keep: s.integer({ default: 3, minimum: 1, maximum: 1000 }),
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

/** Default `spec.results.ttlSeconds`: a week. */
export const DEFAULT_RESULTS_TTL_SECONDS = 7 * 24 * 3600;
/** Longest `spec.results.ttlSeconds` other than 0 (keep forever): ten years. */
export const MAX_RESULTS_TTL_SECONDS = 10 * ONE_YEAR_SECONDS;

export const resultsSchema = s.object({
  ttlSeconds: s.integer({
    default: DEFAULT_RESULTS_TTL_SECONDS,
    minimum: 0,
    maximum: MAX_RESULTS_TTL_SECONDS,
    description:
      "How long the finished run's results (summary, curves, final policy) stay in the job's NATS results object store, from their upload; 0 keeps them until deleted by hand. Deleting the job does not delete them.",
  }),
});

export const runPolicySchema = s.object({
  backoffLimit: s.integer({ default: 3, minimum: 0, maximum: 100 }),
  activeDeadlineSeconds: s.integer({ minimum: 1, maximum: ONE_YEAR_SECONDS }),
  ttlSecondsAfterFinished: s.integer({ minimum: 0, maximum: ONE_YEAR_SECONDS }),
  cleanPodPolicy: s.enumOf(["All", "Running", "None"] as const, { default: "Running" }),
  suspend: s.boolean({ default: false }),
});

/** The context left once a step's action tokens are reserved (spec.model.contextLength − maxStepTokens). */
function contextRoomCel(): string {
  const ctx = presetCel("contextLength").replaceAll("self.", "self.model.");
  return `!has(self.model) || !has(self.environment) || ${ctx} - (has(self.environment.maxStepTokens) ? self.environment.maxStepTokens : ${environmentSchema.props.maxStepTokens.openapi.default}) >= ${MIN_CONTEXT_TOKENS}`;
}

export const specSchema = s.object(
  {
    seed: s.integer({ default: 1, minimum: 0, maximum: 0xffff_ffff, description: "Seeds every random choice (a 32-bit unsigned integer)." }),
    algorithm: algorithmSchema,
    model: modelSchema,
    environment: environmentSchema,
    warmup: warmupSchema,
    rollout: rolloutSchema,
    learner: learnerSchema,
    training: trainingSchema,
    checkpoint: checkpointSchema,
    nats: natsSchema,
    results: resultsSchema,
    runPolicy: runPolicySchema,
  },
  {
    validations: [
      {
        rule: contextRoomCel(),
        message: `model.contextLength must exceed environment.maxStepTokens by at least ${MIN_CONTEXT_TOKENS} tokens (room for the context)`,
        fieldPath: ".environment.maxStepTokens",
        check: (spec) => {
          const stepTokens = (spec.environment as { maxStepTokens?: unknown } | undefined)?.maxStepTokens;
          const known = typeof stepTokens === "number" && Number.isSafeInteger(stepTokens) ? stepTokens : undefined;
          return whenKnown([presetValue(spec.model, "contextLength"), known], ([ctx, step]) => ctx - step >= MIN_CONTEXT_TOKENS);
        },
        holdsOnEmpty: true,
      },
      ...templateModelRules(),
    ],
  },
);

export const metadataSchema = s.object(
  {
    // Checked by the job-level rule below (jobNameValidation), the same one the CRD states in CEL.
    name: s.string(),
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
  { required: ["apiVersion", "kind", "metadata"], validations: [jobNameValidation] },
);

export type StepPOJobSpec = s.Static<typeof specSchema>;
export type StepPOJob = s.Static<typeof jobSchema>;
export type AlgorithmSpec = StepPOJobSpec["algorithm"];
export type ModelSpec = StepPOJobSpec["model"];
export type EnvironmentSpec = StepPOJobSpec["environment"];
export type RolloutSpec = StepPOJobSpec["rollout"];
export type Estimator = (typeof ESTIMATORS)[number];
export type CriticMode = (typeof CRITICS)[number];
export type RatioMode = (typeof RATIO_MODES)[number];
