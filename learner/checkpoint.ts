// What a learner checkpoint holds: weights, Adam moments and step, the KL reference (when KL is on), the shuffle RNG, the update
// counter, the tokenizer and the job spec, plus the caller's run state (worker RNGs, history …).
import type { RngState } from "../core/rng.ts";
import { Rng } from "../core/rng.ts";
import type { StepPOJobSpec } from "../crds/steppojob.ts";
import { loadLatestCheckpoint, writeCheckpoint } from "./checkpoint-store.ts";
import type { Learner, SeparateCritic } from "./learner.ts";
import { checkCriticResume, trainingSpecHash } from "./resume-spec.ts";
import type { NamedTensor } from "../core/weights-codec.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";

const REFERENCE_PREFIX = "reference.";
/** The separate critic's weights and Adam moments (spec.model.critic "separate"): `critic.<name>`, `critic.adam.m.<name>` … */
const CRITIC_PREFIX = "critic.";

export interface CheckpointMeta<R> {
  format: "steppo-learner/1";
  version: number;
  adamStep: number;
  rng: RngState;
  tokenizer: string[];
  /** The model directory's identity (a Hugging Face model's hash); absent for the built-in model. */
  model?: string[];
  spec: StepPOJobSpec;
  /** trainingSpecHash(spec): what a resume compares first (absent in checkpoints written before it). */
  specHash?: string;
  /** The separate critic's Adam step count; absent without a separate critic (and in warm starts). */
  criticAdamStep?: number;
  run: R;
}

export async function saveLearner<R>(dir: string, keep: number, learner: Learner, tokenizer: AgentTokenizer, run: R): Promise<string> {
  // A warm start (update 0) holds no critic: every run makes its separate critic from the policy (startCritic).
  const saved = learner.version > 0 ? learner.critic : undefined;
  const modelIdentity = await learner.modelIdentity();
  const meta: CheckpointMeta<R> = {
    format: "steppo-learner/1",
    version: learner.version,
    adamStep: learner.optimizer.step,
    rng: learner.rng.state(),
    tokenizer: tokenizer.identity(),
    ...(modelIdentity ? { model: modelIdentity } : {}),
    spec: learner.spec,
    specHash: trainingSpecHash(learner.spec),
    ...(saved ? { criticAdamStep: saved.optimizer.step } : {}),
    run,
  };
  // The KL reference is the post-warm-up policy, which no later update can recompute, so it travels with
  // every checkpoint (under "reference.") when KL is on.
  const reference = learner.reference ? await learner.reference.exportWeights() : [];
  const tensors = [
    ...(await learner.model.exportWeights()),
    ...(await learner.optimizer.exportState()),
    ...reference.map((t) => ({ ...t, name: `${REFERENCE_PREFIX}${t.name}` })),
    ...(saved ? await criticTensors(saved) : []),
  ];
  return writeCheckpoint(dir, learner.version, { meta: meta as unknown as Record<string, unknown>, tensors }, keep);
}

/** Restores the newest valid checkpoint in `dir` into `learner`; corrupt ones are reported and skipped. */
export async function restoreLearner<R>(
  dir: string,
  learner: Learner,
  tokenizer: AgentTokenizer,
  log: (line: string) => void,
): Promise<{ path: string; meta: CheckpointMeta<R> } | undefined> {
  const found = await loadLatestCheckpoint(dir, (path, err) => log(`checkpoint ${path} is unusable (${err.message}); trying the previous one`));
  if (!found) return undefined;
  const meta = found.meta as unknown as CheckpointMeta<R>;
  if (meta.format !== "steppo-learner/1") throw new Error(`checkpoint ${found.path}: unknown format ${String(meta.format)}`);
  if (meta.tokenizer.join("\u0000") !== tokenizer.identity().join("\u0000")) {
    throw new Error(`checkpoint ${found.path}: its tokenizer differs from this job's (${tokenizerChange(meta.tokenizer, tokenizer.identity())})`);
  }
  const model = (identity: string[] | undefined) => (identity ?? []).join(" ");
  const modelIdentity = await learner.modelIdentity();
  if (meta.model === undefined && modelIdentity !== undefined) {
    // The tokenizer matched (checked above), so this is the same kind of model: a checkpoint written before the hash was.
    log(`checkpoint ${found.path} does not record its model files' hash (written before it was recorded): not checked`);
  } else if (model(meta.model) !== model(modelIdentity)) {
    throw new Error(
      `checkpoint ${found.path}: trained from another model (${model(meta.model) || "the built-in one"}) than this job's (${model(modelIdentity) || "the built-in one"}): were the files in spec.model.source replaced?`,
    );
  }
  // Before anything is imported: a checkpoint with no critic for a separate one (or the reverse) is refused by name.
  checkCriticResume(found.path, meta, learner.spec);
  const own = (t: { name: string }) => !t.name.startsWith("adam.") && !t.name.startsWith(REFERENCE_PREFIX) && !t.name.startsWith(CRITIC_PREFIX);
  learner.model.importWeights(found.tensors.filter(own));
  learner.optimizer.importState(
    meta.adamStep,
    found.tensors.filter((t) => t.name.startsWith("adam.")),
  );
  learner.rng = new Rng(meta.rng);
  learner.version = meta.version;
  if (learner.separateCritic && meta.version > 0) restoreCritic(found.path, learner, meta.criticAdamStep, found.tensors);
  if (learner.algorithm.klCoef > 0) {
    const reference = found.tensors.filter((t) => t.name.startsWith(REFERENCE_PREFIX));
    if (reference.length > 0) {
      learner.restoreReference(reference.map((t) => ({ ...t, name: t.name.slice(REFERENCE_PREFIX.length) })));
    } else {
      // Written with KL off (klCoef raised since) or by a version that did not save the reference.
      log(`checkpoint ${found.path} holds no KL reference policy; the restored policy becomes the reference`);
      await learner.snapshotReference();
    }
  }
  return { path: found.path, meta };
}

/** The separate critic's weights and Adam state under CRITIC_PREFIX. */
async function criticTensors(critic: SeparateCritic): Promise<NamedTensor[]> {
  const tensors = [...(await critic.model.exportWeights()), ...(await critic.optimizer.exportState())];
  return tensors.map((t) => ({ ...t, name: `${CRITIC_PREFIX}${t.name}` }));
}

/** Rebuilds the learner's separate critic from a checkpoint's CRITIC_PREFIX tensors. */
function restoreCritic(path: string, learner: Learner, adamStep: number | undefined, tensors: NamedTensor[]): void {
  const mine = tensors.filter((t) => t.name.startsWith(CRITIC_PREFIX)).map((t) => ({ ...t, name: t.name.slice(CRITIC_PREFIX.length) }));
  if (mine.length === 0 || adamStep === undefined) throw new Error(`checkpoint ${path}: holds no separate critic (spec.model.critic separate)`);
  const critic = learner.restoreCritic(mine.filter((t) => !t.name.startsWith("adam.")));
  critic.optimizer.importState(
    adamStep,
    mine.filter((t) => t.name.startsWith("adam.")),
  );
}

/** What differs between a checkpoint's tokenizer identity and this job's, in words. */
function tokenizerChange(saved: string[], current: string[]): string {
  const hf = (identity: string[]) => identity[0] === "hf-tokenizer";
  if (hf(saved) !== hf(current))
    return hf(saved)
      ? "it was a Hugging Face model's tokenizer, this job's is the environment's word list"
      : "it was the environment's word list, this job's is a Hugging Face model's tokenizer";
  if (hf(saved)) return `the model directory's tokenizer files or the stop strings changed: ${saved.slice(1).join(" ")} → ${current.slice(1).join(" ")}`;
  return "the environment's vocabulary changed: was the environment config changed?";
}
