// The fixture every multi-process suite starts from: a real nats-server on a free port and a scratch
// directory for job files and run directories. After the suite: every steppo process it started is killed,
// the suite's own watchers are closed (`cleanup`), then the server stops and the directory goes.
import { after, before } from "node:test";
import { NatsServer } from "./nats-server.ts";
import { killAll, Workspace } from "./steppo-process.ts";

export interface NatsRunFixture {
  /** Set once the suite's `before` has run. */
  readonly server: NatsServer;
  readonly ws: Workspace;
}

/** Registers the suite's before/after hooks; call at the top level of a test file or inside its describe. */
export function natsRunFixture(cleanup: () => Promise<void> = async () => {}): NatsRunFixture {
  const f = {} as { server: NatsServer; ws: Workspace };
  before(async () => {
    f.server = await NatsServer.start();
    f.ws = new Workspace();
  });
  after(async () => {
    killAll();
    await cleanup();
    await f.server?.dispose();
    f.ws?.dispose();
  });
  return f;
}
