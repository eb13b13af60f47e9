// A clean stop on SIGTERM or SIGINT for the training commands: the run loop checkpoints what it trained on
// and returns; a second signal exits at once.
export function shutdownSignal(what: string, log: (line: string) => void): { signal: AbortSignal; dispose: () => void } {
  const ctl = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (ctl.signal.aborted) process.exit(130);
    log(`${what}: ${sig} received, shutting down cleanly`);
    ctl.abort();
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
  return {
    signal: ctl.signal,
    dispose: () => {
      process.off("SIGTERM", handler);
      process.off("SIGINT", handler);
    },
  };
}
