// `steppo ui <run-dir>...` (the dashboard of finished or running runs, side by side) and `steppo run --ui [PORT]`
// (the dashboard of the run being trained, live).
import { intFlag, parseFlags, UsageError } from "../core/args.ts";

/** Default port of `steppo ui` and `steppo run --ui`: beside the learner's 9464, so both can be open at once. */
export const DEFAULT_UI_PORT = 8464;

export const UI_USAGE = `  ui <run-dir>...       the run dashboard: curves (several runs overlaid), update diagnostics, sampled episodes
                        step by step; run-dir is runs/<job> or a bench result (bench/results/algos.json)
      --port P            port (default ${DEFAULT_UI_PORT}; 0 any free one); prints the URL it serves
      --host H            address to listen on (default 127.0.0.1; 0.0.0.0 inside a pod)
`;

export async function cmdUi(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { port: { type: "string" }, host: { type: "string" } });
  if (positionals.length === 0) throw new UsageError("ui takes one or more run directories (runs/<job>) or bench results");
  const port = portFlag(values.port as string | undefined, "port") ?? DEFAULT_UI_PORT;
  // Loaded when served: `steppo help` and the operator read this module for its usage text only.
  const { startDashboard } = await import("../runtime/dashboard/server.ts");
  const dashboard = await startDashboard({ sources: positionals, port, host: values.host as string | undefined });
  process.stdout.write(`${dashboard.url}\n`);
  process.stderr.write(`dashboard of ${positionals.join(", ")} at ${dashboard.url} (Ctrl-C stops it)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  await dashboard.close();
  return 0;
}

function portFlag(value: string | undefined, name: string): number | undefined {
  const port = intFlag(value, name);
  if (port !== undefined && port > 65535) throw new UsageError(`--${name} must be a port number (0–65535), got ${port}`);
  return port;
}

/**
 * Takes `--ui [PORT]` out of `steppo run`'s arguments (parseArgs has no optional flag values): `--ui` alone
 * serves on the default port, `--ui 9000` or `--ui=9000` on that one.
 */
export function takeUiFlag(argv: string[]): { rest: string[]; uiPort?: number } {
  const rest: string[] = [];
  let uiPort: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--ui") {
      const next = argv[i + 1];
      if (next !== undefined && /^\d+$/.test(next)) {
        uiPort = portFlag(next, "ui");
        i++;
      } else uiPort = DEFAULT_UI_PORT;
    } else if (a.startsWith("--ui=")) uiPort = portFlag(a.slice("--ui=".length), "ui");
    else rest.push(a);
  }
  return { rest, uiPort };
}

/** The live dashboard of an embedded run; its URL is logged. Undefined when --ui was not given. */
export async function startRunDashboard(runDir: string, uiPort: number | undefined, host: string | undefined, log: (line: string) => void) {
  if (uiPort === undefined) return undefined;
  const { startDashboard } = await import("../runtime/dashboard/server.ts");
  const dashboard = await startDashboard({ sources: [runDir], port: uiPort, host });
  log(`dashboard: ${dashboard.url} (live while training; afterwards: steppo ui ${runDir})`);
  return dashboard;
}
