// Validation of `spec.environment.config` shared by every environment: defaults merged with the
// given values, unknown keys and out-of-range numbers refused with the field named. Cross-field
// checks stay with each environment.

export type ConfigRule =
  | { kind: "int"; min: number; max: number }
  | { kind: "number"; min: number; max: number }
  /** A number strictly between 0 and 1. */
  | { kind: "fraction" };

export const CONFIG_FIELD = "spec.environment.config";

export function describeValue(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? "an array" : v === null ? "null" : String(v);
}

export function parseEnvConfig<T extends { [K in keyof T]: number }>(
  raw: Record<string, unknown> | undefined,
  defaults: T,
  rules: Record<keyof T, ConfigRule>,
): T {
  if (raw !== undefined && (typeof raw !== "object" || raw === null || Array.isArray(raw))) {
    throw new Error(`${CONFIG_FIELD}: expected an object, got ${describeValue(raw)}`);
  }
  const out: T = { ...defaults };
  for (const [key, value] of Object.entries(raw ?? {})) {
    if (!(key in rules)) throw new Error(`${CONFIG_FIELD}.${key}: unknown key (expected one of ${Object.keys(rules).join(", ")})`);
    const rule = rules[key as keyof T];
    if (rule.kind === "fraction") {
      if (typeof value !== "number" || !(value > 0 && value < 1)) {
        throw new Error(`${CONFIG_FIELD}.${key}: expected a number strictly between 0 and 1, got ${describeValue(value)}`);
      }
    } else {
      const integer = rule.kind === "int";
      if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < rule.min || value > rule.max) {
        throw new Error(
          `${CONFIG_FIELD}.${key}: expected ${integer ? "an integer" : "a number"} between ${rule.min} and ${rule.max}, got ${describeValue(value)}`,
        );
      }
    }
    (out as Record<string, number>)[key] = value;
  }
  return out;
}
