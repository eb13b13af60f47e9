// A bounded JetStream pull on the wire protocol ($JS.API.CONSUMER.MSG.NEXT), used instead of the client
// library's fetch() because the learner needs "up to N messages, waiting at most W ms for the first one":
// the request is sent with `no_wait` + `expires`, for which the server returns as soon as it has delivered
// what is available (ending with a 408 status), or a 408 after `expires` when nothing came (verified on
// nats-server 2.9). The client's fetch() either waits the full expiry for a full batch or, when stopped
// early, leaves an open request whose messages would sit unacked until ack_wait.
import { createInbox, type Msg, type NatsConnection } from "@nats-io/transport-node";

export interface PullResult {
  msgs: Msg[];
  /** The status that ended the pull (404 no messages, 408 expired / done, 409 …, 503 no responders), if any. */
  status?: { code: number; description: string };
  /** The pull ended on the client-side guard timer (server unreachable). */
  guardExpired?: boolean;
}

export interface PullRequest {
  stream: string;
  consumer: string;
  batch: number;
  /** Wait at most this long for the first message; 0 returns at once (404 when nothing is there). */
  expiresMs: number;
  maxBytes?: number;
  /** Client-side extra wait beyond `expiresMs` before giving up on the server (default 2000 ms). */
  graceMs?: number;
  apiPrefix?: string;
}

export interface PendingPull {
  result: Promise<PullResult>;
  /** Ends the pull now with what has arrived so far. */
  cancel(): void;
}

export function pull(nc: NatsConnection, req: PullRequest): PendingPull {
  const inbox = createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
  const msgs: Msg[] = [];
  let finish: (r: Omit<PullResult, "msgs">) => void = () => {};
  const result = new Promise<PullResult>((resolve) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub?.unsubscribe();
      resolve({ msgs, ...r });
    };
    const sub = nc.subscribe(inbox, {
      callback: (err, m) => {
        if (err) return finish({ status: { code: 500, description: err.message } });
        const code = m.headers?.code ?? 0;
        if (!m.reply && code > 0) {
          if (code === 100) return; // idle heartbeat / flow control: not requested, ignore
          return finish({ status: { code, description: m.headers?.description ?? "" } });
        }
        msgs.push(m);
        if (msgs.length >= req.batch) finish({});
      },
    });
    timer = setTimeout(() => finish({ guardExpired: true }), req.expiresMs + (req.graceMs ?? 2000));
    const body: Record<string, unknown> = { batch: req.batch, no_wait: true };
    if (req.expiresMs > 0) body.expires = Math.round(req.expiresMs * 1e6);
    if (req.maxBytes) body.max_bytes = req.maxBytes;
    try {
      nc.publish(`${req.apiPrefix ?? "$JS.API"}.CONSUMER.MSG.NEXT.${req.stream}.${req.consumer}`, JSON.stringify(body), { reply: inbox });
    } catch (err) {
      finish({ status: { code: 500, description: (err as Error).message } });
    }
  });
  return { result, cancel: () => finish({}) };
}

export interface AckInfo {
  stream: string;
  consumer: string;
  /** 1 on first delivery. */
  deliveryCount: number;
  streamSeq: number;
  /** Messages left in the consumer after this one (when it was sent). */
  pending: number;
}

/** Parses a JetStream ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`
 * (v1) or `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>[.<rand>]` (v2). */
export function parseAckSubject(reply: string): AckInfo | undefined {
  const t = reply.split(".");
  if (t[0] !== "$JS" || t[1] !== "ACK") return undefined;
  const off = t.length === 9 ? 2 : t.length >= 11 ? 4 : -1;
  if (off < 0) return undefined;
  const deliveryCount = Number(t[off + 2]);
  const streamSeq = Number(t[off + 3]);
  if (!Number.isFinite(deliveryCount) || !Number.isFinite(streamSeq)) return undefined;
  return { stream: t[off], consumer: t[off + 1], deliveryCount, streamSeq, pending: Number(t[off + 6]) || 0 };
}
