// Staleness bounded at admission (AReaL): a worker may start episodes only while
//   admitted (published + running, over all workers) + new ≤ (maxPolicyLag + version + 1) × batch,
// so no sample can be more than maxPolicyLag versions old when the learner (consuming `batch` per version)
// reaches it. maxPolicyLag 0 is synchronous on-policy training.
//
// The counter is one JSON value in the job's KV bucket, changed only by compare-and-set (kv.update with the
// revision read), so any number of workers respect it. Every write carries absolute per-holder totals rather
// than increments, so a write retried after a lost reply (NATS restart) is recognised instead of applied twice:
//   admitted = base + Σ_holders (admitted − abandoned) − staleReturned
// - a holder is one worker process (id + incarnation); it records episodes it started, abandoned (cut off,
//   never published) and published, and bumps `beat` periodically;
// - the learner returns a ticket for every sample it drops as stale (staleReturned = its stale total),
//   otherwise stale drops would starve it;
// - the learner reclaims the running tickets of a holder whose beat has not changed for leaseMs (a worker
//   that was SIGKILLed), folding what it published into `base`. Beats are compared against the learner's own
//   clock, so clock skew between pods does not matter.
import type { KV } from "@nats-io/kv";
import { retrying } from "./connection.ts";
import { RUNTIME_KEYS } from "./runtime-state.ts";

export interface HolderRecord {
  admitted: number;
  abandoned: number;
  published: number;
  beat: number;
  /**
   * Of abandoned: episodes the worker left out of training (an environment fault and its group, a payload
   * above max_payload). Their tickets are returned like any abandoned one; the count is for the learner's
   * accounting. Absent in records of workers that predate it.
   */
  excluded?: number;
}

export interface AdmissionState {
  /** Published episodes of holders that have left. */
  base: number;
  staleReturned: number;
  holders: Record<string, HolderRecord>;
  /** `excluded` of holders that have left or were reclaimed. */
  excludedBase?: number;
}

export function admittedCount(s: AdmissionState): number {
  let n = s.base - s.staleReturned;
  for (const h of Object.values(s.holders)) n += h.admitted - h.abandoned;
  return n;
}

/** Episodes workers left out of training in this run (see HolderRecord.excluded). */
export function excludedCount(s: AdmissionState): number {
  let n = s.excludedBase ?? 0;
  for (const h of Object.values(s.holders)) n += h.excluded ?? 0;
  return n;
}

export function runningCount(h: HolderRecord): number {
  return h.admitted - h.abandoned - h.published;
}

/** (maxPolicyLag + version + 1) × batch. */
export function admissionCapacity(version: number, maxPolicyLag: number, batch: number): number {
  return (maxPolicyLag + Math.max(0, version) + 1) * batch;
}

const emptyState = (): AdmissionState => ({ base: 0, staleReturned: 0, holders: {} });

function isCasConflict(err: unknown): boolean {
  return /wrong last sequence|key exists|already exists/i.test((err as Error)?.message ?? "");
}

/** Read-modify-CAS on the admission key. */
export class AdmissionKV {
  constructor(private readonly kv: KV) {}

  async read(): Promise<{ state: AdmissionState; revision: number }> {
    const e = await retrying(() => this.kv.get(RUNTIME_KEYS.admission));
    if (e?.operation !== "PUT") return { state: emptyState(), revision: 0 };
    return { state: { ...emptyState(), ...e.json<AdmissionState>() }, revision: e.revision };
  }

  /**
   * Applies `change` (which edits the state in place and returns false for "nothing to write") until the
   * compare-and-set succeeds. `change` must be idempotent on the state it is given: it runs again after a
   * conflict, including a conflict with our own earlier attempt whose reply was lost.
   */
  async modify(change: (s: AdmissionState) => boolean): Promise<{ state: AdmissionState; wrote: boolean }> {
    for (;;) {
      const { state, revision } = await this.read();
      if (!change(state)) return { state, wrote: false };
      const data = JSON.stringify(state);
      try {
        if (revision === 0) await retrying(() => this.kv.create(RUNTIME_KEYS.admission, data));
        else await retrying(() => this.kv.update(RUNTIME_KEYS.admission, data, revision));
        return { state, wrote: true };
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
  }
}

/** A worker's side: take tickets before starting episodes, report what became of them. */
export class WorkerAdmission {
  private rec: HolderRecord = { admitted: 0, abandoned: 0, published: 0, beat: 0 };
  private holderId: string;
  private generation = 0;
  /** Our record is in the KV under holderId. */
  private confirmed = false;
  private chain: Promise<unknown> = Promise.resolve();
  /** How often the learner reclaimed this worker's tickets (it was presumed dead, e.g. a long stall). */
  reclaimedTimes = 0;

  constructor(
    private readonly store: AdmissionKV,
    private readonly baseId: string,
  ) {
    this.holderId = baseId;
  }

  get running(): number {
    return runningCount(this.rec);
  }

  /** Our record in `s`, added if absent; if it vanished after we wrote it, we were reclaimed: re-register. */
  private mine(s: AdmissionState): HolderRecord {
    const have = s.holders[this.holderId];
    if (have) return have;
    if (this.confirmed) {
      // Our published episodes were folded into base and our running ones freed: re-admit the running ones.
      this.reclaimedTimes++;
      this.confirmed = false;
      this.holderId = `${this.baseId}~${++this.generation}`;
      this.rec = { admitted: this.running, abandoned: 0, published: 0, beat: 0 };
    }
    const rec = { ...this.rec };
    s.holders[this.holderId] = rec;
    return rec;
  }

  /** Operations of one worker run one at a time: each writes the worker's local totals. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.chain.then(op);
    this.chain = run.catch(() => {});
    return run;
  }

  private async apply(change: (s: AdmissionState, h: HolderRecord) => boolean): Promise<void> {
    const { state, wrote } = await this.store.modify((s) => {
      const added = !s.holders[this.holderId];
      const h = this.mine(s);
      return change(s, h) || (added && this.running > 0);
    });
    if (wrote) this.confirmed = true;
    else if (!state.holders[this.holderId]) this.confirmed = false;
  }

  /**
   * Takes up to `want` tickets, in multiples of `unit` (a task group), while admitted + new ≤ `capacity`.
   * Returns the number granted (0: wait for a new policy version).
   */
  acquire(want: number, unit: number, capacity: number): Promise<number> {
    return this.serial(async () => {
      let granted = 0;
      let intended = -1;
      await this.apply((s, h) => {
        if (intended >= 0 && h.admitted === intended) return false; // our earlier attempt landed
        const room = capacity - admittedCount(s);
        granted = Math.max(0, Math.floor(Math.min(want, room) / unit) * unit);
        if (granted === 0) return false;
        intended = h.admitted = this.rec.admitted + granted;
        return true;
      });
      this.rec.admitted += granted;
      return granted;
    });
  }

  /**
   * Reports the outcome of episodes started with acquire(): published ones stay admitted, abandoned ones are
   * returned; `excluded` (included in `abandoned`) says how many were left out for faults or size.
   */
  settle(published: number, abandoned: number, excluded = 0): Promise<void> {
    return this.serial(async () => {
      this.rec.published += published;
      this.rec.abandoned += abandoned;
      if (excluded > 0) this.rec.excluded = (this.rec.excluded ?? 0) + excluded;
      await this.write();
    });
  }

  /** Proves liveness to the learner (every leaseMs / 4 or so). */
  heartbeat(): Promise<void> {
    return this.serial(async () => {
      this.rec.beat++;
      await this.write();
    });
  }

  private async write(): Promise<void> {
    await this.apply((_s, h) => {
      const same =
        h.admitted === this.rec.admitted &&
        h.abandoned === this.rec.abandoned &&
        h.published === this.rec.published &&
        h.beat === this.rec.beat &&
        h.excluded === this.rec.excluded;
      Object.assign(h, this.rec);
      return !same;
    });
  }

  /** Leaves cleanly: running episodes are abandoned, published ones folded into base. */
  leave(): Promise<void> {
    return this.serial(async () => {
      await this.store.modify((s) => {
        const h = s.holders[this.holderId];
        if (!h) return false;
        delete s.holders[this.holderId];
        s.base += this.rec.published;
        if (this.rec.excluded) s.excludedBase = (s.excludedBase ?? 0) + this.rec.excluded;
        return true;
      });
      this.confirmed = false;
    });
  }
}

/** The learner's side: initial state, ticket returns for stale drops, reclaiming dead holders. */
export class AdmissionSupervisor {
  private readonly seen = new Map<string, { beat: number; at: number }>();

  constructor(
    private readonly store: AdmissionKV,
    private readonly leaseMs: number,
  ) {}

  /** Episodes the workers left out of training so far (environment faults with their groups, oversized). */
  async excluded(): Promise<number> {
    return excludedCount((await this.store.read()).state);
  }

  /** Returns tickets so that staleReturned ≥ `staleTotal` (idempotent; never lowers it). */
  async returnStale(staleTotal: number): Promise<void> {
    await this.store.modify((s) => {
      if (s.staleReturned >= staleTotal) return false;
      s.staleReturned = staleTotal;
      return true;
    });
  }

  /**
   * A new run (the learner found no checkpoint): forget the counter of any earlier run on this job. What is
   * still in the stream stays admitted (it will be trained on or dropped as stale, which returns its ticket);
   * live workers find their record gone and re-register their running episodes.
   */
  async resetForNewRun(streamMessages: number): Promise<void> {
    await this.store.modify((s) => {
      s.base = streamMessages;
      s.staleReturned = 0;
      s.holders = {};
      s.excludedBase = 0;
      return true;
    });
    this.seen.clear();
  }

  /**
   * Safety valve for a leaked counter (e.g. a worker killed between publishing and reporting it): when the
   * learner is starved — nothing in the stream, no worker running an episode — yet the counter leaves no room
   * for the `missing` episodes it needs at `capacity`, lower it just enough. Returns the tickets released.
   */
  async unblock(capacity: number, missing: number): Promise<number> {
    let released = 0;
    await this.store.modify((s) => {
      released = 0;
      if (Object.values(s.holders).some((h) => runningCount(h) > 0)) return false;
      const excess = admittedCount(s) - (capacity - missing);
      if (excess <= 0) return false;
      s.base -= excess;
      released = excess;
      return true;
    });
    return released;
  }

  /** Folds holders whose beat has not moved for leaseMs; returns the live holders and what was reclaimed. */
  async reclaim(now = Date.now()): Promise<{ live: number; reclaimed: { id: string; running: number }[] }> {
    const { state } = await this.store.read();
    const dead: string[] = [];
    for (const [id, h] of Object.entries(state.holders)) {
      const prev = this.seen.get(id);
      if (!prev || prev.beat !== h.beat) this.seen.set(id, { beat: h.beat, at: now });
      else if (now - prev.at > this.leaseMs) dead.push(id);
    }
    for (const id of this.seen.keys()) if (!state.holders[id]) this.seen.delete(id);
    const reclaimed: { id: string; running: number }[] = [];
    if (dead.length > 0) {
      await this.store.modify((s) => {
        reclaimed.length = 0;
        for (const id of dead) {
          const h = s.holders[id];
          if (!h || h.beat !== this.seen.get(id)?.beat) continue; // came back to life meanwhile
          reclaimed.push({ id, running: runningCount(h) });
          s.base += h.published;
          if (h.excluded) s.excludedBase = (s.excludedBase ?? 0) + h.excluded;
          delete s.holders[id];
        }
        return reclaimed.length > 0;
      });
      for (const r of reclaimed) this.seen.delete(r.id);
    }
    return { live: Object.keys(state.holders).length - reclaimed.length, reclaimed };
  }
}
