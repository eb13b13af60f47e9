// One pool of keep-alive connections to the API server for every request the operator makes.
//
// client-node 2.0.1 authenticates each request by building a NEW undici Agent from the kubeconfig's TLS
// options (KubeConfig.applySecurityAuthentication → createDispatcher), so every call opened its own TLS
// connection: a TCP connect, a handshake and a SecureContext that parses the CA bundle, on both ends. In
// `npm run bench -- operator` that was a third of the operator's CPU (TLS set-up in a CPU profile) and,
// on a loaded machine, seconds of create→children latency. This authentication wraps the kubeconfig's:
// the headers (bearer tokens, exec plugins) are still applied per request, but the first Agent built for
// a given server, user and TLS material is kept and handed to every later request; the per-request one,
// never connected, is closed.
import {
  createConfiguration,
  type KubeConfig,
  type RequestContext,
  type SecurityAuthentication,
  ServerConfiguration,
  setHeaderMiddleware,
} from "@kubernetes/client-node";

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;

/** What the kubeconfig's Agent is built from: a change (another context, new TLS material) builds a new one. */
function connectionKey(c: ReturnType<KubeConfig["getCurrentCluster"]>, u: ReturnType<KubeConfig["getCurrentUser"]>): string {
  return JSON.stringify([
    c?.server,
    c?.name,
    c?.caData,
    c?.caFile,
    c?.skipTLSVerify,
    c?.tlsServerName,
    c?.proxyUrl,
    u?.name,
    u?.certData,
    u?.certFile,
    u?.keyData,
    u?.keyFile,
  ]);
}

export class SharedConnections implements SecurityAuthentication {
  private shared?: { key: string; dispatcher: Dispatcher };
  /** The key of the last cluster and user objects seen: serialised again only when the kubeconfig hands out others. */
  private keyOf?: { cluster: unknown; user: unknown; key: string };

  constructor(private readonly kc: KubeConfig) {}

  getName(): string {
    return "kubeconfig authentication over shared connections";
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.kc.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (!fresh) return; // plain http (tests, a proxy sidecar): nothing to pool
    const key = this.currentKey();
    if (this.shared?.key === key) {
      context.setDispatcher(this.shared.dispatcher);
      void fresh.close();
      return;
    }
    const previous = this.shared?.dispatcher;
    this.shared = { key, dispatcher: fresh };
    // Requests still on the old Agent finish first: close() waits for them.
    if (previous) void previous.close();
  }

  private currentKey(): string {
    const cluster = this.kc.getCurrentCluster();
    const user = this.kc.getCurrentUser();
    // The key holds the CA bundle (kilobytes): not serialised on every request while the objects stay the same.
    if (this.keyOf?.cluster !== cluster || this.keyOf?.user !== user) this.keyOf = { cluster, user, key: connectionKey(cluster, user) };
    return this.keyOf.key;
  }

  /** Closes the pooled connections (the operator's shutdown). */
  async close(): Promise<void> {
    const d = this.shared?.dispatcher;
    this.shared = undefined;
    await d?.close();
  }
}

/**
 * kc.makeApiClient(api) with SharedConnections as its authentication: the same server, the same
 * authentication and a User-Agent, one connection pool for every client made with `auth`.
 */
export function makePooledApiClient<T>(
  kc: KubeConfig,
  auth: SharedConnections,
  api: new (config: ReturnType<typeof createConfiguration>) => T,
  userAgent: string,
): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  return new api(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: auth },
      middleware: [setHeaderMiddleware("User-Agent", userAgent)],
    }),
  );
}
