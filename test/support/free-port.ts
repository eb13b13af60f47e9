// A free loopback TCP port for a test server: bind port 0, read what the kernel chose, release it. `avoid`
// skips ports already handed out in this start-up (the kernel may hand one out twice once it is released)
// and, always, 4222: the machine's own nats-server may listen there.
import { createServer } from "node:net";

export async function freePort(avoid: ReadonlySet<number> = new Set()): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.on("error", reject);
      srv.listen(0, "127.0.0.1", () => {
        const addr = srv.address();
        const p = typeof addr === "object" && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port !== 0 && port !== 4222 && !avoid.has(port)) return port;
  }
}
