// Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection: a candidate
// takes the lease when its holder has not renewed it for leaseDuration — measured on OUR clock from when
// we last saw the record change, so clock skew between replicas does not matter — and every write carries
// the resourceVersion it read, so two candidates can never both win. A leader that cannot renew within
// renewDeadline steps down (stops reconciling) before another replica can take over.
import type { V1Lease } from "@kubernetes/client-node";
import { type Clients, statusCode } from "./kube.ts";

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
  log?: (m: string) => void;
}

/** Lease times are metav1.MicroTime: the API server insists on exactly six fractional digits. */
export function microTime(d: Date | string | undefined): string {
  const date = d === undefined ? new Date() : d instanceof Date ? d : new Date(d);
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  private leader = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private inflight?: Promise<void>;
  private observed?: { holder: string; renew: string };
  private observedAt = 0;
  private lastRenew = 0;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;

  constructor(
    private readonly c: Clients,
    private readonly o: LeaderOptions,
  ) {
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    this.stopped = false;
    this.inflight = this.tick();
  }

  /** Stops campaigning; a leader releases the lease so a standby takes over at once instead of after leaseDuration. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // A renewal still in flight would land between our read and our write below and make the release fail
    // with a conflict; let it finish first. It may also just have acquired the lease: release that too.
    await this.inflight;
    const wasLeader = this.leader;
    this.leader = false;
    try {
      const lease = await this.c.coordination.readNamespacedLease({ namespace: this.o.namespace, name: this.o.name });
      if (lease.spec?.holderIdentity === this.o.identity) {
        lease.spec = {
          ...lease.spec,
          holderIdentity: undefined,
          leaseDurationSeconds: 1,
          renewTime: microTime(new Date()) as never,
          acquireTime: microTime(lease.spec.acquireTime as unknown as Date) as never,
        };
        await this.c.coordination.replaceNamespacedLease({ namespace: this.o.namespace, name: this.o.name, body: lease });
      }
    } catch (err) {
      // Not found (never acquired) or the API server is gone: the lease then simply expires.
      if (statusCode(err) !== 404) this.o.log?.(`releasing lease: ${(err as Error).message}`);
    }
    if (wasLeader) await this.o.onStoppedLeading();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.inflight = this.tick();
    }, this.retryMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (err) {
      this.o.log?.(`lease ${this.o.namespace}/${this.o.name}: ${(err as Error).message}`);
    }
    if (this.stopped) return;
    const now = Date.now();
    if (ok) {
      this.lastRenew = now;
      if (!this.leader) {
        this.leader = true;
        this.o.log?.(`${this.o.identity} became leader`);
        await this.o.onStartedLeading();
      }
    } else if (this.leader && now - this.lastRenew > this.renewDeadlineMs) {
      this.leader = false;
      this.o.log?.(`${this.o.identity} lost the lease`);
      await this.o.onStoppedLeading();
    }
    this.schedule();
  }

  private record(now: Date, prev?: V1Lease["spec"]): NonNullable<V1Lease["spec"]> {
    const same = prev?.holderIdentity === this.o.identity;
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.leaseMs / 1000)),
      acquireTime: microTime(same && prev?.acquireTime ? (prev.acquireTime as unknown as Date | string) : now) as never,
      renewTime: microTime(now) as never,
      leaseTransitions: (prev?.leaseTransitions ?? 0) + (same || !prev ? 0 : 1),
    };
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name } = this.o;
    const now = new Date();
    let lease: V1Lease;
    try {
      lease = await this.c.coordination.readNamespacedLease({ namespace, name });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      try {
        await this.c.coordination.createNamespacedLease({
          namespace,
          body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace }, spec: this.record(now) },
        });
        return true;
      } catch (e) {
        if (statusCode(e) === 409) return false;
        throw e;
      }
    }
    const holder = lease.spec?.holderIdentity ?? "";
    const renew = String(lease.spec?.renewTime ?? "");
    if (!this.observed || this.observed.holder !== holder || this.observed.renew !== renew) {
      this.observed = { holder, renew };
      this.observedAt = Date.now();
    }
    const durationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.leaseMs / 1000)) * 1000;
    if (holder !== "" && holder !== this.o.identity && this.observedAt + durationMs > Date.now()) return false;
    try {
      await this.c.coordination.replaceNamespacedLease({ namespace, name, body: { ...lease, spec: this.record(now, lease.spec) } });
      return true;
    } catch (err) {
      if (statusCode(err) === 409) return false;
      throw err;
    }
  }
}
