// Loading a policy version a rollout worker fetched from the weight store. The blob comes over the bus, so
// it may be anything: a malformed one (or one that does not fit the worker's model) must leave the policy
// the worker samples with untouched, and the worker goes on with it until a good version arrives.
import { decodeWeights, type NamedTensor } from "../core/weights-codec.ts";

export interface WeightsTarget {
  importWeights(weights: NamedTensor[]): void;
}

/**
 * Decodes `blob` and loads it into `model`. Returns undefined when loaded, or the cause when refused; a
 * refused blob changes nothing (decoding and every check happen before the first parameter is written).
 */
export function loadPolicyWeights(model: WeightsTarget, blob: Uint8Array): string | undefined {
  let tensors: NamedTensor[];
  try {
    tensors = decodeWeights(blob);
  } catch (err) {
    return (err as Error).message;
  }
  // The learner never publishes non-finite weights (its optimiser refuses such updates): these are corrupt,
  // and sampling with them would make every logit NaN.
  for (const t of tensors) {
    for (const x of t.data) if (!Number.isFinite(x)) return `weights blob: tensor ${t.name} holds a non-finite value (${x})`;
  }
  try {
    model.importWeights(tensors); // checks names and shapes against the model before writing any
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}
