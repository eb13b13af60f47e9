// One episode on an environment server. The context is the server's prompt followed by the observations
// so far, each wrapped in <obs> … </obs>, oldest dropped first when it exceeds `maxContextWords`.
//
// A /step that fails — no reply within the deadline, no connection, an HTTP error status, a body that
// is not JSON or not the protocol's shape — is not an exception: the step gets an error observation
// (reward 0, not done) that says so, StepOutcome.error carries the cause and StepOutcome.fault is set: the
// agent loop ends the episode there and leaves it (and its group) out of training, since reward 0 would
// score the environment's failure as the agent's. A malformed action is not a fault: the server answers
// it with an `error` in a normal reply. The server's state after a failed step is unknown to the client.
import type { Episode, StepOutcome, Task } from "../environment.ts";
import type { EnvClient, FailureKind } from "./client.ts";
import { EnvRequestError } from "./client.ts";
import { parseStepReply, type StepRequest, words } from "./protocol.ts";

const OBS = "<obs>";
const END = "</obs>";

/** What the agent reads when a step could not be carried out on the server. */
const FAILURE_WORDS: Record<FailureKind, string[]> = {
  timeout: ["error", ":", "environment", "timeout", "."],
  unreachable: ["error", ":", "environment", "unreachable", "."],
  status: ["error", ":", "environment", "failed", "."],
  "bad-reply": ["error", ":", "environment", "bad", "reply", "."],
};
const OVER_WORDS = ["error", ":", "episode", "over", "."];

/** Words the client itself may put in a context; added to the server's vocabulary. */
export function clientWords(): string[] {
  return [...new Set([OBS, END, ...Object.values(FAILURE_WORDS).flat(), ...OVER_WORDS])];
}

export class HttpEpisode implements Episode {
  /** Observations so far, each already wrapped in <obs> … </obs>, oldest first. */
  private readonly observations: string[][] = [];
  private readonly prompt: string[];
  /** The server's name for the current state, when it gives one. */
  private state: string | undefined;
  done = false;
  success = false;

  constructor(
    readonly task: Task,
    readonly episodeId: string,
    reset: { prompt: string; observation: string; state?: string },
    private readonly client: EnvClient,
    private readonly maxContextWords: number,
  ) {
    this.prompt = words(reset.prompt);
    this.observe(words(reset.observation));
    this.state = reset.state;
  }

  private observe(ws: string[]): string[] {
    const wrapped = [OBS, ...ws, END];
    if (ws.length > 0) this.observations.push(wrapped);
    return wrapped;
  }

  context(): string[] {
    const prompt = this.prompt.slice(0, this.maxContextWords);
    let budget = this.maxContextWords - prompt.length;
    const kept: string[][] = [];
    for (let i = this.observations.length - 1; i >= 0 && budget > 0; i--) {
      const o = this.observations[i];
      // The newest observation is kept even when it alone overflows: its last words matter most.
      const part = o.length <= budget ? o : kept.length === 0 ? o.slice(o.length - budget) : null;
      if (!part) break;
      kept.unshift(part);
      budget -= part.length;
    }
    return [...prompt, ...kept.flat()];
  }

  stateKey(): string {
    return `${this.task.id}|${this.state ?? this.observations.map((o) => o.join(" ")).join("|")}`;
  }

  async step(action: string[]): Promise<StepOutcome> {
    if (this.done) {
      return { observation: [OBS, ...OVER_WORDS, END], reward: 0, done: true, success: this.success, error: "episode already finished" };
    }
    const request: StepRequest = { episodeId: this.episodeId, action: action.join(" ") };
    try {
      const reply = await this.client.once("POST", "/step", request, parseStepReply);
      const observation = this.observe(words(reply.observation));
      this.state = reply.state;
      this.done = reply.done;
      this.success = reply.success;
      return { observation, reward: reply.reward, done: reply.done, success: reply.success, ...(reply.error ? { error: reply.error } : {}) };
    } catch (err) {
      if (!(err instanceof EnvRequestError)) throw err;
      const observation = this.observe(FAILURE_WORDS[err.kind]);
      // The state is unknown now; key it by what the agent saw so it matches no state the server named.
      this.state = undefined;
      return { observation, reward: 0, done: false, success: false, error: err.message, fault: true };
    }
  }
}
