// Small host helpers the test setup shares: installing missing Debian packages, and whether a pid lives.
import { spawnSync } from "node:child_process";

/** apt-get install (after an apt-get update if the first try fails); `what` says who needs the packages. */
export function aptInstall(need: string[], what: string, log: (line: string) => void): void {
  if (need.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`${what} needs the Debian packages ${need.join(", ")} (apt-get install -y ${need.join(" ")}, as root)`);
  log(`apt-get install -y ${need.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => spawnSync("apt-get", ["install", "-y", "--no-install-recommends", ...need], { encoding: "utf8", env, timeout: 600_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync("apt-get", ["update"], { encoding: "utf8", env, timeout: 600_000 });
    r = install();
  }
  if (r.status !== 0) throw new Error(`apt-get install -y ${need.join(" ")} failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join(" | ")}`);
}

/** True while a process with this pid exists (EPERM: it exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
