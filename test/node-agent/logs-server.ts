// The one kubelet API endpoint the agent serves: GET /containerLogs/<namespace>/<pod>/<container>
// (tailLines, limitBytes, previous, follow), over HTTPS with a throwaway self-signed certificate made with
// openssl, so that `kubectl logs` works through the API server (which does not verify kubelet serving
// certificates unless --kubelet-certificate-authority is set; the test cluster does not set it).
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { join } from "node:path";

export interface LogSource {
  path: string;
  running(): boolean;
}

export type LogResolver = (namespace: string, pod: string, container: string, previous: boolean) => LogSource | undefined;

function selfSigned(dir: string): { key: string; cert: string } | undefined {
  const key = join(dir, "kubelet.key");
  const cert = join(dir, "kubelet.crt");
  const r = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      "/CN=steppo-node-agent",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    { encoding: "utf8", timeout: 20_000 },
  );
  if (r.status !== 0) return undefined;
  return { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
}

function readFrom(path: string, offset: number): Buffer {
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    return Buffer.alloc(0);
  }
  if (size <= offset) return Buffer.alloc(0);
  const buf = Buffer.alloc(size - offset);
  const fd = openSync(path, "r");
  try {
    readSync(fd, buf, 0, buf.length, offset);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** Starts the endpoint on 127.0.0.1 (any free port); undefined when no certificate could be made. */
export async function startLogsServer(
  dir: string,
  resolve: LogResolver,
  log: (m: string) => void,
): Promise<{ port: number; close(): Promise<void> } | undefined> {
  const tls = selfSigned(dir);
  if (!tls) {
    log("openssl could not make a certificate: no logs endpoint (kubectl logs will not work; log files are still written)");
    return undefined;
  }
  const server: Server = createServer(tls, (req, res) => {
    const url = new URL(req.url ?? "/", "https://127.0.0.1");
    const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method !== "GET" || !m) {
      res.writeHead(404).end("not found\n");
      return;
    }
    const [ns, pod, container] = m.slice(1).map(decodeURIComponent);
    const src = resolve(ns, pod, container, url.searchParams.get("previous") === "true");
    if (!src) {
      res.writeHead(404).end(`no logs for ${ns}/${pod}/${container}\n`);
      return;
    }
    let data = readFrom(src.path, 0);
    const tailLines = url.searchParams.get("tailLines");
    if (tailLines !== null) {
      const lines = data.toString("utf8").split("\n");
      const trailing = lines.at(-1) === "" ? lines.pop() : undefined;
      data = Buffer.from(lines.slice(-Number(tailLines) || lines.length).join("\n") + (trailing !== undefined ? "\n" : ""));
    }
    const limit = Number(url.searchParams.get("limitBytes") ?? 0);
    if (limit > 0) data = data.subarray(0, limit);
    res.writeHead(200, { "content-type": "text/plain" });
    res.write(data);
    if (url.searchParams.get("follow") !== "true") {
      res.end();
      return;
    }
    let offset = readFrom(src.path, 0).length;
    const timer = setInterval(() => {
      const more = readFrom(src.path, offset);
      offset += more.length;
      if (more.length > 0) res.write(more);
      else if (!src.running()) {
        clearInterval(timer);
        res.end();
      }
    }, 250);
    req.on("close", () => clearInterval(timer));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
