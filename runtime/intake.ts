// How the learner pulls samples into its buffer. A pull returns as soon as anything is available, so a
// learner that keeps up with its workers would otherwise issue one pull (a request, an inbox subscription and
// a status reply) for every trickle of a few trajectories — costing about a third of the transport's
// throughput (bench/transport.ts). After a short pull it lingers briefly, letting the next pull bring a batch:
// the learner is waiting for samples then anyway, and a few milliseconds are nothing against an update.
import type { Delivery } from "../core/bus.ts";

/** A pull smaller than this (and than what is still needed) makes the learner linger before the next one. */
export const LINGER_BELOW = 64;
export const LINGER_MS = 15;

export async function fetchCoalesced<D extends Delivery>(bus: { fetch(max: number, waitMs: number): Promise<D[]> }, max: number, waitMs: number): Promise<D[]> {
  const ds = await bus.fetch(max, waitMs);
  if (ds.length > 0 && ds.length < Math.min(max, LINGER_BELOW)) await new Promise((r) => setTimeout(r, LINGER_MS));
  return ds;
}
