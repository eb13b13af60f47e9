// The operator's own Prometheus metrics, kept as plain counters and rendered in the text exposition
// format: a handful of series does not justify an SDK pipeline, and the numbers stay inspectable in tests.

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class OperatorMetrics {
  reconciles = new Map<string, number>();
  readonly durationBuckets = new Array<number>(BUCKETS.length).fill(0);
  durationSum = 0;
  durationCount = 0;
  childrenCreated = 0;
  podsDeleted = 0;
  /** Status writes the API server refused because the job had changed since the cache's copy (409). */
  staleStatusWrites = 0;
  watchErrors = 0;
  isLeader = 0;
  queueDepth: () => number = () => 0;
  jobsByPhase: () => Map<string, number> = () => new Map();

  observeReconcile(result: "success" | "error" | "requeue", seconds: number): void {
    this.reconciles.set(result, (this.reconciles.get(result) ?? 0) + 1);
    this.durationSum += seconds;
    this.durationCount++;
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) this.durationBuckets[i]++;
    });
  }

  render(): string {
    const l: string[] = [];
    l.push("# HELP steppo_operator_reconcile_total Reconciles by result.", "# TYPE steppo_operator_reconcile_total counter");
    for (const r of ["success", "error", "requeue"]) l.push(`steppo_operator_reconcile_total{result="${r}"} ${this.reconciles.get(r) ?? 0}`);
    l.push("# HELP steppo_operator_reconcile_duration_seconds Time one reconcile took.", "# TYPE steppo_operator_reconcile_duration_seconds histogram");
    BUCKETS.forEach((b, i) => {
      l.push(`steppo_operator_reconcile_duration_seconds_bucket{le="${b}"} ${this.durationBuckets[i]}`);
    });
    l.push(`steppo_operator_reconcile_duration_seconds_bucket{le="+Inf"} ${this.durationCount}`);
    l.push(`steppo_operator_reconcile_duration_seconds_sum ${this.durationSum}`, `steppo_operator_reconcile_duration_seconds_count ${this.durationCount}`);
    l.push("# TYPE steppo_operator_children_created_total counter", `steppo_operator_children_created_total ${this.childrenCreated}`);
    l.push("# TYPE steppo_operator_pods_deleted_total counter", `steppo_operator_pods_deleted_total ${this.podsDeleted}`);
    l.push(
      "# HELP steppo_operator_stale_status_writes_total Status writes refused because the job changed after the cache's copy.",
      "# TYPE steppo_operator_stale_status_writes_total counter",
      `steppo_operator_stale_status_writes_total ${this.staleStatusWrites}`,
    );
    l.push("# TYPE steppo_operator_watch_errors_total counter", `steppo_operator_watch_errors_total ${this.watchErrors}`);
    l.push(
      "# HELP steppo_operator_leader 1 while this replica holds the leader lease.",
      "# TYPE steppo_operator_leader gauge",
      `steppo_operator_leader ${this.isLeader}`,
    );
    l.push("# TYPE steppo_operator_queue_depth gauge", `steppo_operator_queue_depth ${this.queueDepth()}`);
    l.push("# HELP steppo_operator_jobs StepPOJobs in the cache by phase.", "# TYPE steppo_operator_jobs gauge");
    for (const [phase, n] of this.jobsByPhase()) l.push(`steppo_operator_jobs{phase="${phase}"} ${n}`);
    // Node's own memory, named as prom-client's default metrics: RSS alone cannot tell live objects from heap
    // V8 has not given back.
    const mem = process.memoryUsage();
    l.push(`# TYPE process_resident_memory_bytes gauge`, `process_resident_memory_bytes ${mem.rss}`);
    l.push(`# TYPE nodejs_heap_size_total_bytes gauge`, `nodejs_heap_size_total_bytes ${mem.heapTotal}`);
    l.push(`# TYPE nodejs_heap_size_used_bytes gauge`, `nodejs_heap_size_used_bytes ${mem.heapUsed}`);
    l.push(`# TYPE nodejs_external_memory_bytes gauge`, `nodejs_external_memory_bytes ${mem.external}`);
    return `${l.join("\n")}\n`;
  }
}
