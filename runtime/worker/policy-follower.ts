// How a rollout worker follows the learner's policy. Before it exchanges token ids with the learner it checks
// the learner's runtime description (runtime.info in KV): the vocabularies must match, or every token id would
// mean another word (for a Hugging Face model, the hash is of its tokenizer files' identity). It then loads whatever version `policy.version` names from the object store, whenever
// that key is rewritten: a new version, or an older one after the learner was restored from a checkpoint.
// A malformed blob is refused: the worker keeps sampling with the version it has (tagging trajectories with
// that version), and does not fetch the refused revision again.
import type { NamedTensor } from "../../core/weights-codec.ts";
import type { Decoder, ModelConfig, PolicyModel } from "../../policy/model.ts";
import type { RuntimeInfo } from "../nats/runtime-state.ts";

export class VocabularyMismatchError extends Error {}

export interface Vocabulary {
  /** vocabularyHash() of the worker's tokenizer. */
  hash: string;
  size: number;
}

/** Throws VocabularyMismatchError unless the learner's vocabulary is the worker's. */
export function checkVocabulary(learner: RuntimeInfo, mine: Vocabulary, workerId: string, jobFile: string): void {
  if (learner.tokenizerHash === mine.hash && learner.vocabSize === mine.size) return;
  throw new VocabularyMismatchError(
    `worker ${workerId}: vocabulary mismatch with the learner (worker: hash ${mine.hash}, ${mine.size} tokens; ` +
      `learner: hash ${learner.tokenizerHash}, ${learner.vocabSize} tokens). Learner and workers must run the same job spec ` +
      `(spec.seed and spec.environment decide the vocabulary): check that both use the same job file (${jobFile})`,
  );
}

/** The `policy.version` KV entry as read: its revision tells a rewrite of the same number apart. */
export interface VersionEntry {
  operation: string;
  revision: number;
  json<T>(): T;
}

/** What the follower needs of a model: its shape (to rebuild it when the learner's differs) and disposal. */
export interface FollowedModel {
  readonly config: ModelConfig;
  dispose(): void;
}

/** A followed model the episode loop samples from: PolicyModel, or a Hugging Face model with its run's dimensions. */
export interface FollowedPolicy extends FollowedModel {
  decoder(contexts: Int32Array[]): Decoder;
  importWeights(weights: NamedTensor[]): void;
}

/** Where the policy comes from (the job's KV bucket and object store in the worker process). */
export interface PolicySources<M extends FollowedModel> {
  runtimeInfo(): Promise<RuntimeInfo | undefined>;
  versionEntry(): Promise<VersionEntry | null | undefined>;
  weights(version: number): Promise<Uint8Array | undefined>;
  newModel(config: ModelConfig): M;
  /** Loads a weights blob into the model; returns why it was refused, or undefined when loaded. */
  load(model: M, blob: Uint8Array): string | undefined;
}

export interface PolicyFollowerOptions<M extends FollowedModel> {
  sources: PolicySources<M>;
  vocabulary: Vocabulary;
  workerId: string;
  jobFile: string;
  log: (line: string) => void;
}

export class PolicyFollower<M extends FollowedModel = PolicyModel> {
  /** The learner's runtime description as last checked. */
  info: RuntimeInfo | undefined;
  model: M | undefined;
  /** The version the worker samples with (-1 before the first one loaded). */
  loadedVersion = -1;
  private loadedRevision = 0;
  private refusedRevision = 0;

  constructor(private readonly o: PolicyFollowerOptions<M>) {}

  /** The learner's context length (0 before its runtime description was read). */
  get contextLength(): number {
    return this.info?.model.contextLength ?? 0;
  }

  /**
   * Reads the learner's runtime description: undefined while there is none; throws VocabularyMismatchError.
   * A new learner incarnation with another model shape gets a fresh model (weights follow in sync()).
   */
  async checkRuntime(): Promise<RuntimeInfo | undefined> {
    const got = await this.o.sources.runtimeInfo();
    if (!got) return undefined;
    checkVocabulary(got, this.o.vocabulary, this.o.workerId, this.o.jobFile);
    if (!this.info || this.info.learnerIncarnation !== got.learnerIncarnation) {
      if (this.info) this.o.log(`learner restarted (incarnation ${got.learnerIncarnation})`);
      if (!this.model || JSON.stringify(this.model.config) !== JSON.stringify(got.model)) {
        this.model?.dispose();
        this.model = this.o.sources.newModel(got.model);
      }
      this.info = got;
    }
    return got;
  }

  /** Loads the version policy.version names if it changed; true when the worker has a policy to sample with. */
  async sync(): Promise<boolean> {
    const e = await this.o.sources.versionEntry();
    if (e?.operation !== "PUT") return false;
    if (e.revision === this.loadedRevision && this.model) return true;
    if (e.revision === this.refusedRevision && this.model) return this.loadedVersion >= 0;
    if (!(await this.checkRuntime()) || !this.model) return false;
    const version = e.json<number>();
    const t0 = Date.now();
    const blob = await this.o.sources.weights(version);
    if (!blob) return this.loadedVersion >= 0; // pruned already: a newer version is on its way
    const refused = this.o.sources.load(this.model, blob);
    if (refused !== undefined) {
      if (this.refusedRevision !== e.revision) {
        const keeping = this.loadedVersion >= 0 ? `keeping policy v${this.loadedVersion}` : "no policy loaded yet; waiting for the next version";
        this.o.log(`policy v${version} from the object store refused (${refused}); ${keeping}`);
      }
      this.refusedRevision = e.revision;
      return this.loadedVersion >= 0;
    }
    this.o.log(`policy v${version} loaded from the object store (${blob.byteLength} bytes, ${Date.now() - t0} ms)`);
    this.loadedVersion = version;
    this.loadedRevision = e.revision;
    return true;
  }
}
