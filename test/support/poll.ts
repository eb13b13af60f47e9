// The one "poll until a condition holds or a deadline passes" of the tests (the operator itself never
// polls). A probe returns the value waited for, or undefined (or notYet(observed), to say what it saw)
// while the condition does not hold; a probe that throws counts as not yet, and the timeout names the
// last error or the last value observed.

const NOT_YET = Symbol("notYet");

/** What a probe returns while the condition does not hold, carrying what it observed (for the timeout's message). */
export interface NotYet {
  readonly [NOT_YET]: true;
  readonly observed: unknown;
}

export function notYet(observed: unknown): NotYet {
  return { [NOT_YET]: true, observed };
}

function isNotYet(v: unknown): v is NotYet {
  return typeof v === "object" && v !== null && NOT_YET in v;
}

function describe(v: unknown): string {
  if (v instanceof Error) return v.message;
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
  } catch {
    return String(v);
  }
}

/** Calls `probe` every `intervalMs` until it returns a value (not undefined, not notYet), or throws once `timeoutMs` have passed. */
export async function pollUntil<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | NotYet> | T | undefined | NotYet,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: { kind: "none" } | { kind: "value" | "error"; value: unknown } = { kind: "none" };
  for (;;) {
    try {
      const v = await probe();
      if (isNotYet(v)) last = { kind: "value", value: v.observed };
      else if (v !== undefined) return v;
    } catch (err) {
      last = { kind: "error", value: err };
    }
    if (Date.now() > deadline) {
      const seen = last.kind === "error" ? `; last error: ${describe(last.value)}` : last.kind === "value" ? `; last observed: ${describe(last.value)}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
