// How a container becomes a local process (the "container runtime" of the node agent):
//   image          ignored: every image is this checkout. A command whose first word is `steppo` (or no
//                  command: the image's entrypoint, which is `steppo`) runs `node <checkout>/bin/steppo.mjs`;
//                  any other command runs as-is from PATH (handy for tests of the agent itself).
//   env            value, valueFrom (fieldRef, configMapKeyRef, secretKeyRef) and envFrom, then $(VAR)
//                  expansion in command and args, as the kubelet does. The process gets no environment of
//                  the agent except PATH; HOME and TMPDIR point into the pod's directory.
//   volumeMounts   every mount path is a local directory; args, env values and workingDir that name a
//                  mount path get the local path instead (see rewritePaths for what counts as naming one).
//   ports          all pods share 127.0.0.1, so each declared containerPort gets a free host port: env values
//                  and args equal to the port number (or ending in `=<port>`) are rewritten to it, e.g.
//                  STEPPO_METRICS_PORT=9464 becomes STEPPO_METRICS_PORT=41873. Probes use the host port too.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { V1ConfigMap, V1Container, V1ContainerPort, V1EnvVar, V1Pod, V1Secret } from "@kubernetes/client-node";

export interface Mount {
  mountPath: string;
  local: string;
}

export interface HostPort {
  name?: string;
  containerPort: number;
  hostPort: number;
}

export interface ProcessSpec {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

/** Raised for a container that cannot be started as configured (the kubelet's CreateContainerConfigError). */
export class ContainerConfigError extends Error {}

/** Rewrites every mount path named in `value` to its local directory, in one pass (longest mount path
 * first, so /var/lib/x wins over /var/lib; a replaced local path is never rewritten again). A mount path
 * counts where it starts the string or follows whitespace, `=`, `:`, `,`, a quote, `<`, `>` or `(`, and
 * ends the string or is followed by `/` or one of those (shell scripts in `sh -c` work too). */
export function rewritePaths(value: string, mounts: Mount[]): string {
  const byPath = new Map<string, string>();
  for (const m of mounts) {
    const mp = m.mountPath.replace(/\/+$/, "");
    if (mp !== "" && !byPath.has(mp)) byPath.set(mp, m.local);
  }
  if (byPath.size === 0) return value;
  const alternatives = [...byPath.keys()].sort((a, b) => b.length - a.length).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(^|[\\s=:,'"<>(])(${alternatives.join("|")})(?=$|[\\s/=:,;'"<>)])`, "g");
  return value.replace(re, (_all, pre: string, mp: string) => `${pre}${byPath.get(mp)}`);
}

/** Kubernetes $(VAR) expansion: defined variables are substituted, `$$(` escapes, unknown ones stay. */
export function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => {
    if (all === "$$") return "$";
    return name !== undefined && env[name] !== undefined ? env[name] : all;
  });
}

/** The local program for a container's command line: `steppo` is this checkout's entrypoint. */
export function mapCommand(argv: string[], checkout: string, node = process.execPath): { file: string; args: string[] } {
  if (argv.length === 0) return { file: node, args: [join(checkout, "bin", "steppo.mjs")] };
  const [cmd, ...rest] = argv;
  if (cmd === "steppo" || /\/steppo$/.test(cmd)) return { file: node, args: [join(checkout, "bin", "steppo.mjs"), ...rest] };
  return { file: cmd, args: rest };
}

/** Rewrites the container ports named in a value to their host ports. */
export function remapPort(value: string, ports: HostPort[]): string {
  for (const p of ports) {
    const cp = String(p.containerPort);
    if (value === cp) return String(p.hostPort);
    if (value.endsWith(`=${cp}`)) return `${value.slice(0, -cp.length)}${p.hostPort}`;
  }
  return value;
}

/** The host port of a probe's or a user's port reference (a number or a port name). */
export function hostPortOf(ref: number | string | undefined, declared: V1ContainerPort[] | undefined, ports: HostPort[]): number | undefined {
  if (ref === undefined) return undefined;
  const n = typeof ref === "number" ? ref : /^\d+$/.test(ref) ? Number(ref) : declared?.find((p) => p.name === ref)?.containerPort;
  if (n === undefined) return undefined;
  return ports.find((p) => p.containerPort === n)?.hostPort ?? n;
}

export interface Lookup {
  configMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  secret(namespace: string, name: string): Promise<V1Secret | undefined>;
}

function fieldValue(pod: V1Pod, path: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return (m[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations)?.[m[2]] ?? "";
  switch (path) {
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "default";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "default";
    case "status.podIP":
    case "status.hostIP":
      return "127.0.0.1";
    default:
      throw new ContainerConfigError(`fieldRef ${path} is not supported by the node agent`);
  }
}

function decode(secret: V1Secret, key: string): string | undefined {
  const v = secret.data?.[key];
  if (v !== undefined) return Buffer.from(v, "base64").toString("utf8");
  return secret.stringData?.[key];
}

/** The container's environment as the kubelet computes it (envFrom first, then env in order, with $(VAR)). */
export async function containerEnv(pod: V1Pod, c: V1Container, lookup: Lookup): Promise<Record<string, string>> {
  const ns = pod.metadata?.namespace ?? "default";
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const prefix = from.prefix ?? "";
    if (from.configMapRef) {
      const cm = await lookup.configMap(ns, from.configMapRef.name ?? "");
      if (!cm && !from.configMapRef.optional) throw new ContainerConfigError(`configmap "${from.configMapRef.name}" not found`);
      for (const [k, v] of Object.entries(cm?.data ?? {})) env[prefix + k] = v;
    }
    if (from.secretRef) {
      const s = await lookup.secret(ns, from.secretRef.name ?? "");
      if (!s && !from.secretRef.optional) throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
      for (const k of Object.keys(s?.data ?? {})) env[prefix + k] = decode(s as V1Secret, k) ?? "";
    }
  }
  for (const e of c.env ?? ([] as V1EnvVar[])) {
    if (e.value !== undefined) {
      env[e.name] = expandVars(e.value, env);
      continue;
    }
    const vf = e.valueFrom;
    if (!vf) {
      env[e.name] = "";
    } else if (vf.fieldRef) {
      env[e.name] = fieldValue(pod, vf.fieldRef.fieldPath);
    } else if (vf.configMapKeyRef) {
      const r = vf.configMapKeyRef;
      const v = (await lookup.configMap(ns, r.name ?? ""))?.data?.[r.key];
      if (v === undefined && !r.optional) throw new ContainerConfigError(`couldn't find key ${r.key} in ConfigMap ${ns}/${r.name}`);
      if (v !== undefined) env[e.name] = v;
    } else if (vf.secretKeyRef) {
      const r = vf.secretKeyRef;
      const s = await lookup.secret(ns, r.name ?? "");
      const v = s ? decode(s, r.key) : undefined;
      if (v === undefined && !r.optional) throw new ContainerConfigError(`couldn't find key ${r.key} in Secret ${ns}/${r.name}`);
      if (v !== undefined) env[e.name] = v;
    } else {
      throw new ContainerConfigError(`env ${e.name}: only fieldRef, configMapKeyRef and secretKeyRef are supported by the node agent`);
    }
  }
  return env;
}

export interface ProcessContext {
  checkout: string;
  podDir: string;
  mounts: Mount[];
  ports: HostPort[];
  /** Environment the agent adds (after the container's own: PATH, HOME, TMPDIR, KUBECONFIG, extras). */
  base: Record<string, string>;
  /** Environment that overrides the container's (test settings such as STEPPO_ACK_WAIT_MS). */
  overrides: Record<string, string>;
}

/** The process to start for a container whose environment `env` was resolved by containerEnv. */
export function processSpec(c: V1Container, env: Record<string, string>, ctx: ProcessContext): ProcessSpec {
  const fix = (v: string) => remapPort(rewritePaths(v, ctx.mounts), ctx.ports);
  const outEnv: Record<string, string> = { ...ctx.base };
  for (const [k, v] of Object.entries(env)) outEnv[k] = fix(v);
  Object.assign(outEnv, ctx.overrides);
  const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a) => fix(expandVars(a, env)));
  const { file, args } = mapCommand(c.command && c.command.length > 0 ? argv : ["steppo", ...argv], ctx.checkout);
  // A workingDir outside every mount (inside the image) does not exist here: the pod's directory instead.
  const wd = c.workingDir ? rewritePaths(c.workingDir, ctx.mounts) : undefined;
  const cwd = wd !== undefined && existsSync(wd) ? wd : ctx.podDir;
  return { file, args, env: outEnv, cwd };
}
