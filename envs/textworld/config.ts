// Validation of `spec.environment.config` for the textworld: unknown keys and bad values are errors
// that name the field.
import { type ConfigRules, CONFIG_FIELD, parseEnvConfig } from "../config-rules.ts";
import { checkHeldOutFractions } from "../held-out.ts";
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
  /** The next share of in-domain worlds (goals, with heldOutGoals) for the validation split (taken from what was train). */
  validationFraction: number;
  /** Chance that an in-domain map locks a door on the way (its key lies in the start room). */
  lockedProb: number;
  /** Chance that a room holds a container. */
  containerProb: number;
  /** Extra objects scattered around. */
  distractors: number;
  /**
   * 1: in-domain worlds go to train or test by their goal (`take gem cellar`, `put coin chest cellar`), not
   * by their whole content, so no test goal is ever a training goal (every object, container and room
   * still occurs in training goals). 0: by content; test worlds are new, their goals mostly are not.
   */
  heldOutGoals: number;
  /**
   * 1: every room description starts with the number of steps taken so far (`step 3 .`). An episode ends
   * at a step limit the context does not otherwise show, so without it two equal contexts at step 1 and at
   * step 7 look alike though one has 7 steps left and the other 1: the task is not Markov in what the agent
   * sees, and a critic cannot tell them apart ("Time Limits in Reinforcement Learning", Pardo et al. 2018).
   * 0: no counter (the original observations).
   */
  stepCounter: number;
}

export const TEXTWORLD_DEFAULTS: TextworldConfig = {
  rooms: 4,
  oodRooms: 7,
  stepBudget: 8,
  maxContextWords: 96,
  testFraction: 0.2,
  validationFraction: 0.1,
  lockedProb: 0.25,
  containerProb: 0.6,
  distractors: 2,
  heldOutGoals: 0,
  stepCounter: 0,
};

const RULES: ConfigRules<TextworldConfig> = {
  rooms: { kind: "int", min: 2, max: 12 },
  oodRooms: { kind: "int", min: 3, max: 14 },
  stepBudget: { kind: "int", min: 3, max: 100 },
  maxContextWords: { kind: "int", min: 64, max: 100000 },
  testFraction: { kind: "number", min: 0.01, max: 0.99 },
  validationFraction: { kind: "number", min: 0.01, max: 0.98 },
  lockedProb: { kind: "number", min: 0, max: 1 },
  containerProb: { kind: "number", min: 0, max: 1 },
  distractors: { kind: "int", min: 0, max: 8 },
  heldOutGoals: { kind: "int", min: 0, max: 1 },
  stepCounter: { kind: "int", min: 0, max: 1 },
};

export function parseTextworldConfig(raw: Record<string, unknown> | undefined): TextworldConfig {
  const out = parseEnvConfig(raw, TEXTWORLD_DEFAULTS, RULES);
  checkHeldOutFractions(out);
  if (out.oodRooms <= out.rooms) throw new Error(`${CONFIG_FIELD}.oodRooms: expected more rooms than rooms (${out.rooms}), got ${out.oodRooms}`);
  return out;
}
