// One JSON request to an environment server, with a deadline and an optional bounded retry. Every way
// a request can fail — timeout, no connection, an HTTP error status, a body that is not JSON or not the
// expected shape — becomes an EnvRequestError whose `kind` the episode turns into words for the agent.
import { ReplyShapeError } from "./protocol.ts";

export type FailureKind = "timeout" | "unreachable" | "status" | "bad-reply";

export class EnvRequestError extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
    /** HTTP status, when the server answered with one outside 2xx. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** Base URL; paths are appended to it (a trailing slash is ignored). */
  url: string;
  timeoutMs: number;
  headers: Record<string, string>;
  /** Retries of requests that may be retried (see `request`), with exponential back-off from this delay. */
  retries: number;
  retryDelayMs: number;
}

/** Longest body excerpt quoted in an error message. */
const EXCERPT = 120;

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return JSON.stringify(flat.length > EXCERPT ? `${flat.slice(0, EXCERPT)}...` : flat);
}

/** The network-level cause of a failed fetch: undici puts it in `cause` (ECONNREFUSED, socket closed ...). */
function networkCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message ?? String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class EnvClient {
  private readonly base: string;

  constructor(readonly opts: ClientOptions) {
    this.base = opts.url.replace(/\/+$/, "");
  }

  endpoint(path: string): string {
    return `${this.base}${path}`;
  }

  /** One attempt: the parsed reply, or an EnvRequestError describing the failure. */
  async once<T>(method: "GET" | "POST", path: string, body: unknown, parse: (json: unknown) => T): Promise<T> {
    const url = this.endpoint(path);
    const what = `${method} ${url}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...this.opts.headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      // The deadline covers the body too: a server that stalls mid-reply times out like one that never answers.
      text = await res.text();
    } catch (err) {
      if ((err as Error).name === "TimeoutError") throw new EnvRequestError(`${what}: no reply within ${this.opts.timeoutMs} ms`, "timeout");
      throw new EnvRequestError(`${what}: connection failed (${networkCause(err)})`, "unreachable");
    }
    if (!res.ok) throw new EnvRequestError(`${what}: HTTP ${res.status}${text ? ` ${excerpt(text)}` : ""}`, "status", res.status);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new EnvRequestError(`${what}: the reply is not JSON: ${excerpt(text)}`, "bad-reply");
    }
    try {
      return parse(json);
    } catch (err) {
      if (err instanceof ReplyShapeError) throw new EnvRequestError(`${what}: malformed reply: ${err.message}`, "bad-reply");
      throw err;
    }
  }

  /**
   * `once`, retried up to `opts.retries` times with back-off, for requests whose failure has no in-episode
   * fallback (/info, /reset, /demonstrate). A 4xx status is the client's mistake and is not retried.
   * The final error names the URL, the attempts and the last cause.
   */
  async withRetries<T>(method: "GET" | "POST", path: string, body: unknown, parse: (json: unknown) => T): Promise<T> {
    const attempts = this.opts.retries + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(method, path, body, parse);
      } catch (err) {
        if (!(err instanceof EnvRequestError)) throw err;
        const clientError = err.status !== undefined && err.status >= 400 && err.status < 500;
        if (clientError || attempt >= attempts) {
          const tries = attempt === 1 ? "" : ` (after ${attempt} attempts)`;
          throw new EnvRequestError(`http environment: ${err.message}${tries}`, err.kind, err.status);
        }
        await sleep(this.opts.retryDelayMs * 2 ** (attempt - 1));
      }
    }
  }
}
