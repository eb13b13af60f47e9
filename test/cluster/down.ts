// npm run cluster:down — stops the cluster `npm run cluster:up` started and deletes its data.
import { rmSync } from "node:fs";
import { ownsPid, readState, STATE_FILE, statePids } from "./state.ts";

async function stopPid(pid: number, dir: string): Promise<void> {
  if (!ownsPid(pid, dir)) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 5000;
  while (ownsPid(pid, dir) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (ownsPid(pid, dir)) process.kill(pid, "SIGKILL");
}

async function main(): Promise<void> {
  const state = readState();
  if (!state) {
    console.log("no test cluster is running (no state file)");
    return;
  }
  for (const pid of statePids(state)) await stopPid(pid, state.dir);
  rmSync(state.dir, { recursive: true, force: true });
  rmSync(STATE_FILE, { force: true });
  console.log(`stopped the test cluster at ${state.server} and removed ${state.dir}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
