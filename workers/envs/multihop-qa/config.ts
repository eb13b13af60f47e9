// `spec.environment.config` for multihop-qa: defaults and validation. Errors name the offending field
// as `spec.environment.config.<key>` and say what was expected.

export interface MultihopQaConfig {
  /** Knowledge-base size per entity type. */
  people: number;
  films: number;
  cities: number;
  companies: number;
  /** Passages a search returns. */
  topK: number;
  /** Passages of evidence kept in the context. */
  maxPassages: number;
  /** Hard bound on context words (question + evidence + note). */
  maxContextWords: number;
  /** Share of bridge anchors (films, companies) held out for the in-domain test split. */
  testFraction: number;
}

export const DEFAULT_CONFIG: Readonly<MultihopQaConfig> = {
  people: 24,
  films: 12,
  cities: 8,
  companies: 8,
  topK: 2,
  maxPassages: 2,
  maxContextWords: 96,
  testFraction: 0.25,
};

type Rule = { kind: "int"; min: number; max: number } | { kind: "fraction" };

const RULES: Record<keyof MultihopQaConfig, Rule> = {
  people: { kind: "int", min: 2, max: 500 },
  films: { kind: "int", min: 2, max: 500 },
  cities: { kind: "int", min: 2, max: 500 },
  companies: { kind: "int", min: 2, max: 500 },
  topK: { kind: "int", min: 1, max: 10 },
  maxPassages: { kind: "int", min: 1, max: 10 },
  maxContextWords: { kind: "int", min: 1, max: 4096 },
  testFraction: { kind: "fraction" },
};

const FIELD = "spec.environment.config";

function describe(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? "an array" : v === null ? "null" : String(v);
}

/**
 * Defaults merged with `raw`. `minContextWords` is the smallest context bound that still fits the
 * longest question plus the longest note (the question is never dropped).
 */
export function parseConfig(raw: Record<string, unknown> | undefined, minContextWords: number): MultihopQaConfig {
  if (raw !== undefined && (typeof raw !== "object" || raw === null || Array.isArray(raw))) {
    throw new Error(`${FIELD}: expected an object, got ${describe(raw)}`);
  }
  const out: MultihopQaConfig = { ...DEFAULT_CONFIG };
  for (const [key, value] of Object.entries(raw ?? {})) {
    if (!(key in RULES)) throw new Error(`${FIELD}.${key}: unknown key (expected one of ${Object.keys(RULES).join(", ")})`);
    const k = key as keyof MultihopQaConfig;
    const rule = RULES[k];
    if (rule.kind === "int") {
      if (typeof value !== "number" || !Number.isInteger(value) || value < rule.min || value > rule.max) {
        throw new Error(`${FIELD}.${key}: expected an integer between ${rule.min} and ${rule.max}, got ${describe(value)}`);
      }
    } else if (typeof value !== "number" || !(value > 0 && value < 1)) {
      throw new Error(`${FIELD}.${key}: expected a number strictly between 0 and 1, got ${describe(value)}`);
    }
    out[k] = value;
  }
  if (out.maxContextWords < minContextWords) {
    throw new Error(
      `${FIELD}.maxContextWords: expected an integer of at least ${minContextWords} (the longest question plus a note), got ${out.maxContextWords}`,
    );
  }
  return out;
}
