// spec.model.volume: where spec.model.source's directory lives, as a Kubernetes volume source. The operator
// mounts it read-only at spec.model.source in the main container of the learner pod and of every rollout pod
// (operator/desired.ts), so that a job need not repeat the mount in both pod templates. The field, its CEL
// rules and their local checks are defined here together; `steppo run` has no pods and ignores the field.
import * as s from "./schema.ts";
import { MAIN_CONTAINERS, RESERVED_MOUNT_PATHS } from "./pod-template.ts";

/** The pod volume spec.model.volume becomes; a template may not declare that name beside spec.model.volume. */
export const MODEL_VOLUME = "model";

// A Kubernetes object name (a DNS subdomain) is at most 253 characters.
const OBJECT_NAME = { minLength: 1, maxLength: 253 };

// A subPath climbing out of the volume (`..`) is refused by the API server only when the pod is created;
// refused here, the job fails at admission instead of every pod failing later.
const PARENT_SEGMENT = "(^|/)[.][.](/|$)";

export const modelVolumeSchema = s.object(
  {
    persistentVolumeClaim: s.object(
      { claimName: s.string({ ...OBJECT_NAME, description: "A claim in the job's namespace holding the model." }) },
      {
        required: ["claimName"],
        description:
          "The normal case on a GPU cluster. It is mounted read-only; rollout pods on several nodes need a claim they can share (ReadOnlyMany or ReadWriteMany).",
      },
    ),
    configMap: s.object(
      { name: s.string({ ...OBJECT_NAME, description: "A ConfigMap in the job's namespace: one key per file of the model directory." }) },
      {
        required: ["name"],
        description: "Tiny models only: a ConfigMap holds at most 1 MiB in all, and the safetensors files must go in its binaryData.",
      },
    ),
    subPath: s.string({ minLength: 1, maxLength: 1024, description: "The model's directory inside the volume (relative); default its root." }),
  },
  {
    optional: true,
    description:
      "Where spec.model.source's directory lives, as a volume: exactly one of persistentVolumeClaim and configMap, optionally a subPath in it. " +
      `The operator mounts it (as the volume "${MODEL_VOLUME}") read-only at source in the main container of the learner pod and of every rollout pod; ` +
      `the pod templates may then declare neither a volume or mount named ${MODEL_VOLUME} nor a mount at or inside source. ` +
      "Without it the templates mount the directory (spec.learner.template, spec.rollout.template). steppo run reads source as a local path and ignores this field.",
    validations: [
      {
        rule: "has(self.persistentVolumeClaim) != has(self.configMap)",
        message: "exactly one of persistentVolumeClaim and configMap",
        check: (v) => (v.persistentVolumeClaim === undefined) !== (v.configMap === undefined),
      },
      {
        rule: `!has(self.subPath) || (!self.subPath.startsWith('/') && !self.subPath.matches('${PARENT_SEGMENT}'))`,
        message: "subPath is a directory inside the volume: a relative path without .. segments",
        fieldPath: ".subPath",
        check: (v) => typeof v.subPath !== "string" || (!v.subPath.startsWith("/") && !new RegExp(PARENT_SEGMENT).test(v.subPath)),
      },
    ],
  },
);

export type ModelVolume = s.Static<typeof modelVolumeSchema>;

// One or more `/name` segments: absolute, no empty segment (`//`) and no trailing slash, so that the
// comparisons with the templates' mount paths and the operator's own below are plain string ones.
const CLEAN_ABSOLUTE = "^(/[^/]+)+$";
const DOT_SEGMENT = "(^|/)[.][.]?(/|$)";

function isCleanAbsolute(path: string): boolean {
  return new RegExp(CLEAN_ABSOLUTE).test(path) && !new RegExp(DOT_SEGMENT).test(path);
}

/** True when `path` is `dir` or lies inside it (`dir` clean, see CLEAN_ABSOLUTE). */
function atOrInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/** spec.model with a volume and a source: the source, else undefined (no mount, so nothing to check). */
function mountedSource(model: unknown): string | undefined {
  const m = model as { volume?: unknown; source?: unknown } | undefined;
  return m?.volume !== undefined && typeof m.source === "string" ? m.source : undefined;
}

/**
 * spec.model's rules about the volume (`self` is spec.model): it needs source, and source is then a mount
 * path the operator can use — clean and absolute, clear of the operator's own mounts (a model mounted over
 * /tmp or the checkpoint claim would hide it, or the other way round).
 */
export const modelVolumeRules: s.Validation[] = [
  {
    rule: "!has(self.volume) || has(self.source)",
    message: "volume is mounted at source in the pods: it needs source",
    fieldPath: ".volume",
    check: (m) => m.volume === undefined || m.source !== undefined,
  },
  {
    rule: `!has(self.volume) || !has(self.source) || (self.source.matches('${CLEAN_ABSOLUTE}') && !self.source.matches('${DOT_SEGMENT}'))`,
    message: "with volume, source is where the operator mounts it: an absolute path without a trailing slash, // or . and .. segments",
    fieldPath: ".source",
    check: (m) => mountedSource(m) === undefined || isCleanAbsolute(mountedSource(m) as string),
  },
  {
    rule: `!has(self.volume) || !has(self.source) || ${s.celList(RESERVED_MOUNT_PATHS)}.all(p, self.source != p && !self.source.startsWith(p + '/') && !p.startsWith(self.source + '/'))`,
    message: `with volume, source may not be, lie inside or contain the operator's own mount paths (${RESERVED_MOUNT_PATHS.join(", ")})`,
    fieldPath: ".source",
    check: (m) => {
      const source = mountedSource(m);
      return source === undefined || RESERVED_MOUNT_PATHS.every((p) => !atOrInside(source, p) && !p.startsWith(`${source}/`));
    },
  },
];

type Role = (typeof MAIN_CONTAINERS)[number];
type TemplateList = "volumes" | "volumeMounts";

/** `has()` for every step of a field path, so that a rule holds where any of it is absent. */
function celPresent(path: readonly string[]): string {
  return path.map((_, i) => `has(self.${path.slice(0, i + 1).join(".")})`).join(" && ");
}

/** The template's list, or undefined where it is absent or malformed (its own errors are reported already). */
function templateList(spec: Record<string, unknown>, role: Role, list: TemplateList): Record<string, unknown>[] | undefined {
  const t = (spec[role] as { template?: { spec?: Record<string, unknown> } } | undefined)?.template?.spec?.[list];
  return Array.isArray(t) ? (t as Record<string, unknown>[]) : undefined;
}

/** A spec-level rule on one template list, applying only when spec.model.volume is mounted. */
function templateRule(
  role: Role,
  list: TemplateList,
  each: string,
  message: string,
  ok: (item: Record<string, unknown>, source: string) => boolean,
): s.Validation {
  const guard = `${celPresent(["model", "volume"])} && has(self.model.source) && ${celPresent([role, "template", "spec", list])}`;
  return {
    rule: `!(${guard}) || self.${role}.template.spec.${list}.all(x, ${each})`,
    message,
    fieldPath: `.${role}.template.spec.${list}`,
    check: (spec) => {
      const source = mountedSource(spec.model);
      const items = templateList(spec, role, list);
      return source === undefined || items === undefined || items.every((x) => x === null || typeof x !== "object" || ok(x, source));
    },
    holdsOnEmpty: true,
  };
}

/**
 * spec's rules (`self` is spec): with spec.model.volume, neither pod template may declare the volume's name or
 * a mount at or inside spec.model.source. Merged pods would otherwise carry two volumes of one name or two
 * mounts at one path, which the API server refuses only when the operator creates each pod.
 */
export function templateModelRules(): s.Validation[] {
  return MAIN_CONTAINERS.flatMap((role) => [
    templateRule(
      role,
      "volumes",
      `x.name != '${MODEL_VOLUME}'`,
      `the volume name ${MODEL_VOLUME} is the operator's when spec.model.volume is set (it mounts the model under it)`,
      (v) => v.name !== MODEL_VOLUME,
    ),
    templateRule(
      role,
      "volumeMounts",
      `x.name != '${MODEL_VOLUME}' && x.mountPath != self.model.source && !x.mountPath.startsWith(self.model.source + '/')`,
      `with spec.model.volume set, the operator mounts volume ${MODEL_VOLUME} at spec.model.source: a template mount may neither use that volume nor be at or inside that path`,
      (m, source) => m.name !== MODEL_VOLUME && (typeof m.mountPath !== "string" || !atOrInside(m.mountPath, source)),
    ),
  ]);
}
