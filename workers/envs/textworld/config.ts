// Validation of `spec.environment.config` for the textworld: unknown keys and bad values are errors
// that name the field.
export interface TextworldConfig {
  /** Rooms in the in-domain (fetch, place) and `locked` maps. */
  rooms: number;
  /** Rooms in the held-out `larger-map` family. */
  oodRooms: number;
  /** Tasks are generated so the optimal demonstrator finishes within this many steps. */
  stepBudget: number;
  maxContextWords: number;
  /** Share of in-domain worlds that belong to the test split. */
  testFraction: number;
  /** Chance that an in-domain map locks a door on the way (its key lies in the start room). */
  lockedProb: number;
  /** Chance that a room holds a container. */
  containerProb: number;
  /** Extra objects scattered around. */
  distractors: number;
}

export const TEXTWORLD_DEFAULTS: TextworldConfig = {
  rooms: 4,
  oodRooms: 7,
  stepBudget: 8,
  maxContextWords: 96,
  testFraction: 0.2,
  lockedProb: 0.25,
  containerProb: 0.6,
  distractors: 2,
};

type Rule = { integer: boolean; min: number; max: number };

const RULES: Record<keyof TextworldConfig, Rule> = {
  rooms: { integer: true, min: 2, max: 12 },
  oodRooms: { integer: true, min: 3, max: 14 },
  stepBudget: { integer: true, min: 3, max: 100 },
  maxContextWords: { integer: true, min: 64, max: 100000 },
  testFraction: { integer: false, min: 0.01, max: 0.99 },
  lockedProb: { integer: false, min: 0, max: 1 },
  containerProb: { integer: false, min: 0, max: 1 },
  distractors: { integer: true, min: 0, max: 8 },
};

const FIELD = "spec.environment.config";

function describe(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? "an array" : v === null ? "null" : String(v);
}

export function parseTextworldConfig(raw: Record<string, unknown> | undefined): TextworldConfig {
  if (raw !== undefined && (typeof raw !== "object" || raw === null || Array.isArray(raw)))
    throw new Error(`${FIELD}: expected an object, got ${describe(raw)}`);
  const out: TextworldConfig = { ...TEXTWORLD_DEFAULTS };
  for (const [key, value] of Object.entries(raw ?? {})) {
    if (!(key in RULES)) throw new Error(`${FIELD}.${key}: unknown key (expected one of ${Object.keys(RULES).join(", ")})`);
    const rule = RULES[key as keyof TextworldConfig];
    const kind = rule.integer ? "an integer" : "a number";
    if (typeof value !== "number" || !Number.isFinite(value) || (rule.integer && !Number.isInteger(value)) || value < rule.min || value > rule.max) {
      throw new Error(`${FIELD}.${key}: expected ${kind} between ${rule.min} and ${rule.max}, got ${describe(value)}`);
    }
    out[key as keyof TextworldConfig] = value;
  }
  if (out.oodRooms <= out.rooms) throw new Error(`${FIELD}.oodRooms: expected more rooms than rooms (${out.rooms}), got ${out.oodRooms}`);
  return out;
}
