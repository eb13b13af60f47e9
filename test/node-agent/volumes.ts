// A pod's volumes as local directories (the kubelet's volume manager, for processes):
//   configMap / secret      the keys (or `items`) written as files into <pod dir>/volumes/<name>
//   persistentVolumeClaim   <agent dir>/claims/<namespace>/<claim>-<claim uid>: outlives the pod, so a
//                           recreated learner finds its checkpoints; a new claim of the same name is empty
//   emptyDir                <pod dir>/volumes/<name>
//   hostPath                the path itself (the "host" is this machine)
//   projected               serviceAccountToken (TokenRequest bound to the pod), configMap, secret, downwardAPI
//   downwardAPI             metadata.name/namespace/uid/labels/annotations as files
// and the service-account token a real cluster's ServiceAccount admission plugin would mount (that plugin
// is off in the test cluster): when the pod's service account exists and automountServiceAccountToken is
// not false, <pod dir>/serviceaccount holds token, ca.crt and namespace (mounted at
// /var/run/secrets/kubernetes.io/serviceaccount) and a kubeconfig for the process: a process cannot see
// that fixed path, so in-cluster config is offered as KUBECONFIG instead (client libraries prefer it).
// A ConfigMap, Secret or claim that does not exist yet is a VolumeError: the pod waits (ContainerCreating)
// and the agent tries again. Files are written once, at pod start (no live updates of ConfigMap volumes).
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { CoreV1Api, V1ConfigMap, V1DownwardAPIVolumeFile, V1KeyToPath, V1Pod, V1Secret } from "@kubernetes/client-node";
import yaml from "js-yaml";
import { statusCode } from "../../operator/kube.ts";

export const SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A volume that cannot be set up yet (missing object): the pod stays in ContainerCreating and is retried. */
export class VolumeError extends Error {}

export interface VolumeContext {
  core: CoreV1Api;
  pod: V1Pod;
  podDir: string;
  claimsDir: string;
  /** The API server as pods reach it (for the service-account kubeconfig). */
  server: string;
  caPem: string;
  /** Lifetime of projected tokens (default 3600 s; the agent does not rotate them). */
  tokenSeconds?: number;
}

export interface Volumes {
  /** volume name → local directory */
  dirs: Map<string, string>;
  /** The automounted service-account credentials, when the pod has them. */
  serviceAccount?: { dir: string; kubeconfig: string };
}

async function read<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw new VolumeError(`reading ${what}: ${(err as Error).message}`);
  }
}

function writeFile(dir: string, rel: string, content: string | Buffer, mode?: number): void {
  if (rel.split("/").includes("..")) throw new VolumeError(`volume path ${rel} escapes the volume`);
  const path = join(dir, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  if (mode !== undefined) chmodSync(path, mode);
}

function writeKeys(
  dir: string,
  data: Record<string, string | Buffer>,
  items: V1KeyToPath[] | undefined,
  what: string,
  mode?: number,
  optional?: boolean,
): void {
  if (!items) {
    for (const [k, v] of Object.entries(data)) writeFile(dir, k, v, mode);
    return;
  }
  for (const it of items) {
    const v = data[it.key];
    if (v === undefined) {
      if (optional) continue;
      throw new VolumeError(`${what} has no key ${it.key}`);
    }
    writeFile(dir, it.path, v, it.mode ?? mode);
  }
}

function configMapData(cm: V1ConfigMap): Record<string, string | Buffer> {
  const out: Record<string, string | Buffer> = { ...(cm.data ?? {}) };
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) out[k] = Buffer.from(v, "base64");
  return out;
}

function secretData(s: V1Secret): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, "base64");
  for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = Buffer.from(v, "utf8");
  return out;
}

function downward(pod: V1Pod, items: V1DownwardAPIVolumeFile[], dir: string): void {
  for (const it of items) {
    const f = it.fieldRef?.fieldPath;
    if (!f) throw new VolumeError(`downwardAPI item ${it.path}: only fieldRef is supported by the node agent`);
    const map = (m: Record<string, string> | undefined) =>
      Object.entries(m ?? {})
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join("\n");
    const value =
      f === "metadata.name"
        ? pod.metadata?.name
        : f === "metadata.namespace"
          ? pod.metadata?.namespace
          : f === "metadata.uid"
            ? pod.metadata?.uid
            : f === "metadata.labels"
              ? map(pod.metadata?.labels)
              : f === "metadata.annotations"
                ? map(pod.metadata?.annotations)
                : undefined;
    if (value === undefined) throw new VolumeError(`downwardAPI fieldRef ${f} is not supported by the node agent`);
    writeFile(dir, it.path, value, it.mode);
  }
}

async function podToken(ctx: VolumeContext, account: string, audiences?: string[], seconds?: number): Promise<string> {
  const ns = ctx.pod.metadata?.namespace ?? "default";
  try {
    const tr = await ctx.core.createNamespacedServiceAccountToken({
      name: account,
      namespace: ns,
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          audiences: audiences ?? [],
          expirationSeconds: seconds ?? ctx.tokenSeconds ?? 3600,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: ctx.pod.metadata?.name, uid: ctx.pod.metadata?.uid },
        },
      },
    });
    const token = tr.status?.token;
    if (!token) throw new Error("the TokenRequest returned no token");
    return token;
  } catch (err) {
    throw new VolumeError(`token for service account ${ns}/${account}: ${(err as Error).message}`);
  }
}

/** A kubeconfig that reaches the API server as the pod's service account. */
export function serviceAccountKubeconfig(server: string, caPem: string, token: string, namespace: string): string {
  return yaml.dump({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "in-cluster", cluster: { server, "certificate-authority-data": Buffer.from(caPem).toString("base64") } }],
    users: [{ name: "service-account", user: { token } }],
    contexts: [{ name: "in-cluster", context: { cluster: "in-cluster", user: "service-account", namespace } }],
    "current-context": "in-cluster",
  });
}

export async function materializeVolumes(ctx: VolumeContext): Promise<Volumes> {
  const { core, pod } = ctx;
  const ns = pod.metadata?.namespace ?? "default";
  const dirs = new Map<string, string>();
  const volDir = (name: string) => {
    const d = join(ctx.podDir, "volumes", name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  for (const v of pod.spec?.volumes ?? []) {
    if (v.configMap) {
      const name = v.configMap.name ?? "";
      const cm = await read(`configmap ${ns}/${name}`, () => core.readNamespacedConfigMap({ name, namespace: ns }));
      if (!cm && !v.configMap.optional) throw new VolumeError(`configmap "${name}" not found`);
      const d = volDir(v.name);
      if (cm) writeKeys(d, configMapData(cm), v.configMap.items, `configmap ${name}`, v.configMap.defaultMode, v.configMap.optional);
      dirs.set(v.name, d);
    } else if (v.secret) {
      const name = v.secret.secretName ?? "";
      const s = await read(`secret ${ns}/${name}`, () => core.readNamespacedSecret({ name, namespace: ns }));
      if (!s && !v.secret.optional) throw new VolumeError(`secret "${name}" not found`);
      const d = volDir(v.name);
      if (s) writeKeys(d, secretData(s), v.secret.items, `secret ${name}`, v.secret.defaultMode, v.secret.optional);
      dirs.set(v.name, d);
    } else if (v.persistentVolumeClaim) {
      const claim = v.persistentVolumeClaim.claimName;
      const pvc = await read(`persistentvolumeclaim ${ns}/${claim}`, () => core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns }));
      if (!pvc) throw new VolumeError(`persistentvolumeclaim "${claim}" not found`);
      const d = join(ctx.claimsDir, ns, `${claim}-${pvc.metadata?.uid}`);
      mkdirSync(d, { recursive: true });
      dirs.set(v.name, d);
    } else if (v.emptyDir) {
      dirs.set(v.name, volDir(v.name));
    } else if (v.hostPath) {
      mkdirSync(v.hostPath.path, { recursive: true });
      dirs.set(v.name, v.hostPath.path);
    } else if (v.downwardAPI) {
      const d = volDir(v.name);
      downward(pod, v.downwardAPI.items ?? [], d);
      dirs.set(v.name, d);
    } else if (v.projected) {
      const d = volDir(v.name);
      for (const src of v.projected.sources ?? []) {
        if (src.serviceAccountToken) {
          const t = src.serviceAccountToken;
          const account = pod.spec?.serviceAccountName || "default";
          writeFile(d, t.path, await podToken(ctx, account, t.audience ? [t.audience] : undefined, t.expirationSeconds), v.projected.defaultMode);
        } else if (src.configMap) {
          const name = src.configMap.name ?? "";
          const cm = await read(`configmap ${ns}/${name}`, () => core.readNamespacedConfigMap({ name, namespace: ns }));
          if (!cm && !src.configMap.optional) throw new VolumeError(`configmap "${name}" not found`);
          if (cm) writeKeys(d, configMapData(cm), src.configMap.items, `configmap ${name}`, v.projected.defaultMode, src.configMap.optional);
        } else if (src.secret) {
          const name = src.secret.name ?? "";
          const s = await read(`secret ${ns}/${name}`, () => core.readNamespacedSecret({ name, namespace: ns }));
          if (!s && !src.secret.optional) throw new VolumeError(`secret "${name}" not found`);
          if (s) writeKeys(d, secretData(s), src.secret.items, `secret ${name}`, v.projected.defaultMode, src.secret.optional);
        } else if (src.downwardAPI) {
          downward(pod, src.downwardAPI.items ?? [], d);
        } else {
          throw new VolumeError(`projected volume ${v.name}: unsupported source ${Object.keys(src).join(",")}`);
        }
      }
      dirs.set(v.name, d);
    } else {
      const kind = Object.keys(v).filter((k) => k !== "name");
      throw new VolumeError(`volume ${v.name}: type ${kind.join(",")} is not supported by the node agent`);
    }
  }

  // The ServiceAccount admission plugin's automount, done here because the plugin is off.
  let serviceAccount: Volumes["serviceAccount"];
  const account = pod.spec?.serviceAccountName || "default";
  const mountsSa = (pod.spec?.containers ?? []).some((c) => (c.volumeMounts ?? []).some((m) => m.mountPath === SERVICE_ACCOUNT_MOUNT));
  if (pod.spec?.automountServiceAccountToken !== false && !mountsSa) {
    const sa = await read(`serviceaccount ${ns}/${account}`, () => core.readNamespacedServiceAccount({ name: account, namespace: ns }));
    if (sa && sa.automountServiceAccountToken !== false) {
      const d = join(ctx.podDir, "serviceaccount");
      mkdirSync(d, { recursive: true });
      const token = await podToken(ctx, account);
      writeFile(d, "token", token);
      writeFile(d, "ca.crt", ctx.caPem);
      writeFile(d, "namespace", ns);
      const kubeconfig = join(d, "kubeconfig");
      writeFileSync(kubeconfig, serviceAccountKubeconfig(ctx.server, ctx.caPem, token, ns), { mode: 0o600 });
      serviceAccount = { dir: d, kubeconfig };
    } else if (!sa && pod.spec?.serviceAccountName && pod.spec.serviceAccountName !== "default") {
      throw new VolumeError(`serviceaccount "${pod.spec.serviceAccountName}" not found`);
    }
  }
  return { dirs, serviceAccount };
}
