// One JSON request to an environment server, with a deadline and an optional bounded retry. Every way
// a request can fail — timeout, no connection, an HTTP error status, a body that is not JSON or not the
// expected shape — becomes an EnvRequestError whose `kind` the episode turns into words for the agent.
//
// The requests carry the job's headers, credentials included, so the client never follows a redirect (the
// headers would go to whichever origin the server names) and reads at most `maxReplyBytes` of a reply
// (a server that streams without end must not exhaust the worker's memory).
import { credentialedUrlMessage, HEADERS_FROM_HINT, hasUrlCredentials, redactUrl } from "../../crds/secrets.ts";
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

/** A reply body over maxReplyBytes: not retried, since the same request would get the same reply. */
export class ReplyTooLargeError extends EnvRequestError {
  constructor(what: string, limit: number) {
    super(`${what}: the reply is larger than maxReplyBytes (${limit} bytes); raise spec.environment.config.maxReplyBytes if it is expected`, "bad-reply");
  }
}

export interface ClientOptions {
  /** Base URL; paths are appended to it (a trailing slash is ignored). */
  url: string;
  timeoutMs: number;
  headers: Record<string, string>;
  /** Largest reply body read; a longer one fails the request (kind "bad-reply") without being read to the end. */
  maxReplyBytes: number;
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

/** A reply that is not the server's final answer: a redirect, which is never followed. */
function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

/** The reply body as text, read chunk by chunk and abandoned as soon as it exceeds `limit` bytes. */
async function readBounded(res: Response, limit: number, what: string): Promise<string> {
  const tooLarge = () => new ReplyTooLargeError(what, limit);
  const declared = Number(res.headers.get("content-length") ?? Number.NaN);
  if (declared > limit) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      // Cancelling closes the connection: the rest of the body is never received.
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export class EnvClient {
  private readonly base: string;

  constructor(readonly opts: ClientOptions) {
    // The config parser refuses these already; checked again because a URL with credentials in it would be
    // sent and quoted in every error message.
    if (hasUrlCredentials(opts.url)) throw new Error(`http environment: ${credentialedUrlMessage(HEADERS_FROM_HINT)}`);
    this.base = opts.url.replace(/\/+$/, "");
  }

  endpoint(path: string): string {
    return `${this.base}${path}`;
  }

  /** One attempt: the parsed reply, or an EnvRequestError describing the failure. */
  async once<T>(method: "GET" | "POST", path: string, body: unknown, parse: (json: unknown) => T): Promise<T> {
    const url = this.endpoint(path);
    const what = `${method} ${redactUrl(url)}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...this.opts.headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        // Never to another origin with our headers: a 3xx comes back as is and fails below.
        redirect: "manual",
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      if (isRedirect(res.status)) {
        await res.body?.cancel().catch(() => {});
        const location = res.headers.get("location");
        throw new EnvRequestError(
          `${what}: HTTP ${res.status} redirect to ${location ? JSON.stringify(redactUrl(location)) : "(no Location)"} not followed: ` +
            "the http environment never follows redirects (its headers may carry credentials); set spec.environment.config.url to the final address",
          "status",
          res.status,
        );
      }
      // The deadline covers the body too: a server that stalls mid-reply times out like one that never answers.
      text = await readBounded(res, this.opts.maxReplyBytes, what);
    } catch (err) {
      if (err instanceof EnvRequestError) throw err;
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
   * fallback (/info, /reset, /demonstrate). A 4xx status is the client's mistake and is not retried, nor is
   * a redirect (the configured URL is wrong) or an oversized reply (the same request gets the same reply).
   * The final error names the URL, the attempts and the last cause.
   */
  async withRetries<T>(method: "GET" | "POST", path: string, body: unknown, parse: (json: unknown) => T): Promise<T> {
    const attempts = this.opts.retries + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(method, path, body, parse);
      } catch (err) {
        if (!(err instanceof EnvRequestError)) throw err;
        const clientError = err.status !== undefined && err.status >= 300 && err.status < 500;
        if (clientError || err instanceof ReplyTooLargeError || attempt >= attempts) {
          const tries = attempt === 1 ? "" : ` (after ${attempt} attempts)`;
          throw new EnvRequestError(`http environment: ${err.message}${tries}`, err.kind, err.status);
        }
        await sleep(this.opts.retryDelayMs * 2 ** (attempt - 1));
      }
    }
  }
}
