// The StepPOJob's identity and the bounds other modules compute names from. A leaf module (it imports
// nothing) so that crds/names.ts can use it and crds/steppojob.ts can use names.ts without a cycle.
export const GROUP = "steppo.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "StepPOJob";

/**
 * The most rollout workers one job may ask for (spec.rollout.replicas, minReplicas, maxReplicas). The
 * operator has its own, lower limit (`steppo operator --max-replicas`); this one bounds what any operator
 * could be asked to create and how long a rollout pod's index may be (crds/names.ts).
 */
export const MAX_REPLICAS = 1000;
