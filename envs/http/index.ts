// The http environment: tasks served by an external process, in any language, over the small JSON
// protocol in PROTOCOL.md (GET /info, POST /reset, POST /step, optionally POST /demonstrate). Opening it
// asks the server for its vocabulary and families, so the tokenizer is built from what it declares.
//
// A task is (split, family, seed): sampled here from the worker's RNG, resolved by the server at every
// /reset, so all episodes of a group (GRPO, GiGPO) and every evaluation replay the same task.
import type { Rng } from "../../core/rng.ts";
import { redactUrl } from "../../crds/secrets.ts";
import { type Environment, type Episode, SPLITS, type Split, type Task } from "../environment.ts";
import { EnvClient } from "./client.ts";
import { parseHttpEnvConfig, type ResolvedHttpEnvConfig, resolveHeaders } from "./config.ts";
import { clientWords, HttpEpisode } from "./episode.ts";
import { type DemonstrateRequest, type InfoReply, parseDemonstrateReply, parseInfoReply, parseResetReply, type ResetRequest, words } from "./protocol.ts";

/** First back-off of a retried request (doubling each time). */
const RETRY_DELAY_MS = 250;

const TASK_ID = /^(train|validation|test|ood)\/(.+)\/(\d+)$/;

class HttpEnvironment implements Environment {
  readonly name: string;
  readonly families: { train: string[]; ood: string[] };
  readonly splits: readonly Split[];

  constructor(
    readonly config: ResolvedHttpEnvConfig,
    readonly info: InfoReply,
    private readonly client: EnvClient,
  ) {
    this.name = `http:${info.name}`;
    this.families = { train: [...info.families.train], ood: [...info.families.ood] };
    // A server written before the validation split existed would refuse it at /reset: it must say it serves it.
    this.splits = info.validation ? SPLITS : SPLITS.filter((s) => s !== "validation");
  }

  vocabulary(): string[] {
    return [...new Set([...this.info.vocabulary, ...clientWords()])];
  }

  sampleTask(rng: Rng, split: Split, family?: string): Task {
    if (!this.splits.includes(split)) {
      throw new Error(
        `${this.name}: the environment server at ${redactUrl(this.config.url)} serves no ${split} split (its /info does not say "validation": true)`,
      );
    }
    const families = split === "ood" ? this.families.ood : this.families.train;
    const fam = family ?? rng.pick(families);
    if (!families.includes(fam)) throw new Error(`${this.name}: family "${fam}" is not in the ${split} split (have: ${families.join(", ") || "none"})`);
    const seed = rng.nextUint32();
    // Prompt and answer stay with the server: the prompt arrives with each /reset.
    return { id: `${split}/${fam}/${seed}`, family: fam, split, prompt: [], answer: "" };
  }

  async start(task: Task): Promise<Episode> {
    const m = TASK_ID.exec(task.id);
    if (!m) throw new Error(`${this.name}: "${task.id}" is not an http task id (split/family/seed)`);
    const request: ResetRequest = { split: m[1] as Split, family: m[2], seed: Number(m[3]) };
    const reply = await this.client.withRetries("POST", "/reset", request, parseResetReply);
    return new HttpEpisode(task, reply.episodeId, reply, this.client, this.config.maxContextWords);
  }

  demonstrator(_task: Task, rng: Rng, suboptimal: boolean): (episode: Episode) => Promise<string[]> {
    if (!this.info.demonstrations) {
      throw new Error(
        `spec.warmup.enabled: the environment server at ${redactUrl(this.config.url)} offers no demonstrations (its /info does not say "demonstrations": true); ` +
          `set spec.warmup.enabled: false or serve POST /demonstrate`,
      );
    }
    const seed = rng.nextUint32();
    return async (episode) => {
      if (!(episode instanceof HttpEpisode)) throw new Error(`${this.name} demonstrator: not an http episode`);
      const request: DemonstrateRequest = { episodeId: episode.episodeId, suboptimal, seed };
      return words((await this.client.withRetries("POST", "/demonstrate", request, parseDemonstrateReply)).action);
    };
  }
}

/**
 * Validates the config, reads the headersFrom values from this process's environment, then reads the
 * server's /info (retried while the server starts).
 */
export async function openHttpEnvironment(raw: Record<string, unknown>, _seed: number): Promise<Environment> {
  const config = parseHttpEnvConfig(raw);
  const client = new EnvClient({
    url: config.url,
    timeoutMs: config.timeoutMs,
    headers: resolveHeaders(config),
    maxReplyBytes: config.maxReplyBytes,
    retries: config.retries,
    retryDelayMs: RETRY_DELAY_MS,
  });
  const info = await client.withRetries("GET", "/info", undefined, parseInfoReply);
  return new HttpEnvironment(config, info, client);
}
