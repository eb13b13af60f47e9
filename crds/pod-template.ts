// spec.learner.template / spec.rollout.template: the part of a PodTemplateSpec a job may set, merged over the
// pod the operator generates (operator/desired.ts). What would break the operator's own pod is refused, in CEL
// for the API server and by the same predicates in the loader (crds/job-spec.ts): the operator's labels,
// env vars named STEPPO_*, its volume names and mount paths, and a sidecar named like the main container (the
// main container's command, image and resources are the operator's: the template cannot reach them).
import * as s from "./schema.ts";

/** Main container names: a sidecar may not take one (it would replace the learner or worker). */
export const MAIN_CONTAINERS = ["learner", "rollout"] as const;
/** Volumes the operator mounts (desired.ts): a template volume may not take their names. */
export const RESERVED_VOLUMES = ["job", "tmp", "nats-creds", "checkpoints"] as const;
/** Where the operator mounts them: a template mount may not shadow these paths. */
export const RESERVED_MOUNT_PATHS = ["/etc/steppo/job", "/tmp", "/var/lib/steppo", "/etc/steppo/nats"] as const;
/** Env vars the operator sets all start with this. */
export const RESERVED_ENV_PREFIX = "STEPPO_";
/** Label keys the operator sets (steppo.dev/job, role, restart, spec-hash) and its managed-by label. */
export const RESERVED_LABEL_PREFIX = "steppo.dev/";
export const RESERVED_LABELS = ["app.kubernetes.io/managed-by"] as const;
/** Kueue's queue label: on the StepPOJob it is copied to every pod (plain-pod integration). */
export const KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name";

const NAME = { maxLength: 253 };

const envVar = s.object(
  {
    name: s.string({ minLength: 1, maxLength: 256 }),
    value: s.string({ maxLength: 32768 }),
    valueFrom: s.free({ description: "As in a container's env (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef)." }),
  },
  {
    required: ["name"],
    validations: [
      {
        rule: `!self.name.startsWith('${RESERVED_ENV_PREFIX}')`,
        message: `env vars named ${RESERVED_ENV_PREFIX}* are the operator's`,
        fieldPath: ".name",
        check: (e) => !String(e.name).startsWith(RESERVED_ENV_PREFIX),
      },
    ],
  },
);

const volume = s.object(
  { name: s.string({ minLength: 1, maxLength: 63 }) },
  {
    required: ["name"],
    preserveUnknownFields: true,
    description: "A pod volume (configMap, secret, emptyDir, persistentVolumeClaim, csi, …).",
    validations: [
      {
        rule: `!(self.name in ${s.celList(RESERVED_VOLUMES)})`,
        message: `volume names ${RESERVED_VOLUMES.join(", ")} are the operator's`,
        fieldPath: ".name",
        check: (v) => !(RESERVED_VOLUMES as readonly string[]).includes(String(v.name)),
      },
    ],
  },
);

const volumeMount = s.object(
  {
    name: s.string({ minLength: 1, maxLength: 63 }),
    mountPath: s.string({ minLength: 1, maxLength: 4096 }),
  },
  {
    required: ["name", "mountPath"],
    preserveUnknownFields: true,
    description: "A mount in the main container (readOnly, subPath, …).",
    validations: [
      {
        rule: `!(self.mountPath in ${s.celList(RESERVED_MOUNT_PATHS)})`,
        message: `mount paths ${RESERVED_MOUNT_PATHS.join(", ")} are the operator's`,
        fieldPath: ".mountPath",
        check: (m) => !(RESERVED_MOUNT_PATHS as readonly string[]).includes(String(m.mountPath).replace(/\/+$/, "") || "/"),
      },
    ],
  },
);

const sidecar = s.object(
  { name: s.string({ minLength: 1, maxLength: 63 }) },
  {
    required: ["name"],
    preserveUnknownFields: true,
    description: "An extra container (a sidecar) as in a Pod spec.",
    validations: [
      {
        rule: `!(self.name in ${s.celList(MAIN_CONTAINERS)})`,
        message: `container names ${MAIN_CONTAINERS.join(", ")} are the operator's main containers (their command cannot be overridden)`,
        fieldPath: ".name",
        check: (c) => !(MAIN_CONTAINERS as readonly string[]).includes(String(c.name)),
      },
    ],
  },
);

const labelKeyRule: s.Validation = {
  rule: `!has(self.labels) || self.labels.all(k, !k.startsWith('${RESERVED_LABEL_PREFIX}') && !(k in ${s.celList(RESERVED_LABELS)}))`,
  message: `labels ${RESERVED_LABEL_PREFIX}* and ${RESERVED_LABELS.join(", ")} are the operator's`,
  fieldPath: ".labels",
  check: (m) =>
    Object.keys((m.labels as Record<string, string> | undefined) ?? {}).every(
      (k) => !k.startsWith(RESERVED_LABEL_PREFIX) && !(RESERVED_LABELS as readonly string[]).includes(k),
    ),
};

export function podTemplateSchema(role: (typeof MAIN_CONTAINERS)[number]) {
  return s.object(
    {
      metadata: s.object(
        {
          labels: s.map(s.string({ maxLength: 63 }), { maxProperties: 64, description: "Added to the pod's labels." }),
          annotations: s.map(s.string(), { maxProperties: 64, description: "Added to the pod's annotations." }),
        },
        { optional: true, validations: [labelKeyRule] },
      ),
      spec: s.object(
        {
          env: s.array(envVar, { maxItems: 64, description: `Env vars added to the ${role} container (after the operator's).` }),
          volumes: s.array(volume, { maxItems: 32, description: "Volumes added to the pod." }),
          volumeMounts: s.array(volumeMount, { maxItems: 32, description: `Mounts added to the ${role} container.` }),
          imagePullSecrets: s.array(s.object({ name: s.string({ minLength: 1, ...NAME }) }, { required: ["name"] }), { maxItems: 16 }),
          serviceAccountName: s.string({ ...NAME, description: "The pod's service account (its token stays unmounted: the operator's processes need none)." }),
          nodeSelector: s.map(s.string(), { maxProperties: 64, description: "Merged over the operator's (spec.learner.nodeSelector)." }),
          affinity: s.free({ description: "As in a Pod spec." }),
          tolerations: s.array(s.free(), { maxItems: 64, description: "Added to the operator's (spec.learner.tolerations)." }),
          priorityClassName: s.string(NAME),
          containers: s.array(sidecar, { maxItems: 16, description: "Extra (sidecar) containers." }),
        },
        { optional: true },
      ),
    },
    {
      optional: true,
      description: `A PodTemplateSpec subset merged over the ${role} pod the operator generates; the operator's own fields cannot be overridden.`,
    },
  );
}

export type PodTemplate = s.Static<ReturnType<typeof podTemplateSchema>>;
