// Step samples — the unit of the training buffer after advantages are fixed — and their packing into
// padded [B, T] arrays. Sequence layout of one sample: [c_t ; a_t], where action token i sits at index
// Lc + i and is predicted from position Lc − 1 + i. V(c_t) is read at position Lc − 1.

export interface StepSample {
  trajId: string;
  workerId: string;
  policyVersion: number;
  contextIds: Int32Array; // [Lc]
  actionIds: Int32Array; // [L]
  /** Behaviour-policy log-probs from the worker. [L] */
  behaviourLogProbs: Float32Array;
  /** Proximal (pre-update) log-probs recomputed by the learner. [L] */
  oldLogProbs: Float32Array;
  /** Advantage per action token (Â_t broadcast for step-level estimators). [L] */
  advantages: Float32Array;
  /** Value targets at the positions listed by valuePositions (relative to Lc − 1). */
  valueTargets: Float32Array;
  /** Old values at the same positions (for optional value clipping). */
  oldValues: Float32Array;
  /** Offsets from Lc − 1 where the critic is trained: [0] for step critics, 0..L−1 for token critics. */
  valueOffsets: Int32Array;
  /** Reference-policy log-probs for the KL penalty. [L] */
  refLogProbs?: Float32Array;
}

export interface PackedBatch {
  B: number;
  T: number;
  ids: Int32Array; // [B, T]
  targets: Int32Array; // [B, T] next token at each predicting position
  actionMask: Float32Array; // [B, T] 1 where an action token is predicted
  invLength: Float32Array; // [B] 1 / L_t
  advantages: Float32Array; // [B, T]
  oldLogProbs: Float32Array; // [B, T]
  behaviourLogProbs: Float32Array; // [B, T]
  refLogProbs: Float32Array; // [B, T]
  valueMask: Float32Array; // [B, T]
  valueTargets: Float32Array; // [B, T]
  oldValues: Float32Array; // [B, T]
}

export function packSteps(samples: StepSample[]): PackedBatch {
  const B = samples.length;
  const T = Math.max(...samples.map((s) => s.contextIds.length + s.actionIds.length));
  const n = B * T;
  const p: PackedBatch = {
    B,
    T,
    ids: new Int32Array(n),
    targets: new Int32Array(n),
    actionMask: new Float32Array(n),
    invLength: new Float32Array(B),
    advantages: new Float32Array(n),
    oldLogProbs: new Float32Array(n),
    behaviourLogProbs: new Float32Array(n),
    refLogProbs: new Float32Array(n),
    valueMask: new Float32Array(n),
    valueTargets: new Float32Array(n),
    oldValues: new Float32Array(n),
  };
  samples.forEach((s, b) => {
    const row = b * T;
    const Lc = s.contextIds.length;
    const L = s.actionIds.length;
    p.ids.set(s.contextIds, row);
    p.ids.set(s.actionIds, row + Lc);
    p.invLength[b] = L > 0 ? 1 / L : 0;
    for (let i = 0; i < L; i++) {
      const pos = row + Lc - 1 + i;
      p.targets[pos] = s.actionIds[i];
      p.actionMask[pos] = 1;
      p.advantages[pos] = s.advantages[i];
      p.oldLogProbs[pos] = s.oldLogProbs[i];
      p.behaviourLogProbs[pos] = s.behaviourLogProbs[i];
      p.refLogProbs[pos] = s.refLogProbs ? s.refLogProbs[i] : s.oldLogProbs[i];
    }
    s.valueOffsets.forEach((off, k) => {
      const pos = row + Lc - 1 + off;
      p.valueMask[pos] = 1;
      p.valueTargets[pos] = s.valueTargets[k];
      p.oldValues[pos] = s.oldValues[k];
    });
  });
  return p;
}
