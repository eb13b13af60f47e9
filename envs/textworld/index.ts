// The textworld environment: generated rooms joined by doors (one may be locked), a key, containers
// and objects; commands `go [ north ]`, `take [ coin ]`, `open [ chest ]`, `unlock [ east ]` (the
// locked door in that direction, with the carried key) and `put [ coin in chest ]`. Each task is its
// own world, regenerated from the seed in its id; reward 1 arrives on the step that reaches the goal.
//
// Families: in-domain `fetch` ("take the gem in the cellar") and `place` ("put the coin in the chest
// in the cellar"), on `rooms`-room maps; held-out `larger-map` (either goal on `oodRooms` rooms) and
// `locked` (a locked door on the way whose key lies in another room). Every task is generated so the
// optimal demonstrator finishes within `stepBudget` steps.
//
// Train, validation and test never share a world (split by a hash of the world's content: test below
// testFraction 0.2, validation in the next validationFraction 0.1, carved out of what was train, so test
// keeps its worlds), and no episode's contexts equal a training episode's, but most held-out goals are
// training goals in another world (there are ~1350 goals). `heldOutGoals: 1` splits by the goal instead:
// validation and test goals are object–room (–container) combinations training never asks for, and
// neither asks for the other's (about 270 test and 135 validation goals, each in ~2³² generated worlds);
// OOD goals are test goals, as before.
import { Rng } from "../../core/rng.ts";
import { SPLITS, type Environment, type Episode, type Split, type Task } from "../environment.ts";
import { type InDomainSplit, inDomainSplit } from "../held-out.ts";
import { parseTextworldConfig, type TextworldConfig } from "./config.ts";
import { optimalDecision, textworldPlayer } from "./demonstrator.ts";
import { goalWords, TextworldEpisode } from "./episode.ts";
import { type GenerateOptions, generateWorld, signature, type World } from "./world.ts";
import { textworldVocabulary } from "./words.ts";

export const TEXTWORLD_FAMILIES = { train: ["fetch", "place"], ood: ["larger-map", "locked"] };

const ALL_FAMILIES = [...TEXTWORLD_FAMILIES.train, ...TEXTWORLD_FAMILIES.ood];
const ATTEMPTS = 200;
const CACHE_LIMIT = 4096;

/** FNV-1a over a string, 32 bits. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Steps the optimal demonstrator needs on `world` with the episodes' context budget (it forgets the
 * memories the context drops), or Infinity beyond `budget`.
 */
export function optimalSteps(world: World, budget: number, maxContextWords: number, stepCounter = false): number {
  const task: Task = { id: "probe", family: "probe", split: "train", prompt: [], answer: "" };
  const ep = new TextworldEpisode(task, world, maxContextWords, stepCounter);
  for (let t = 1; t <= budget; t++) {
    const out = ep.stepSync(optimalDecision(ep).words);
    if (out.done) return out.success ? t : Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}

class Textworld implements Environment {
  readonly name = "textworld";
  readonly families = { train: [...TEXTWORLD_FAMILIES.train], ood: [...TEXTWORLD_FAMILIES.ood] };
  readonly splits = SPLITS;
  private readonly vocab: string[];
  private readonly cache = new Map<string, World>();

  constructor(
    readonly config: TextworldConfig,
    readonly seed: number,
  ) {
    this.vocab = textworldVocabulary(config.stepCounter === 1);
  }

  vocabulary(): string[] {
    return [...this.vocab];
  }

  /** The world of (family, task seed); null when no candidate fits the step budget. */
  world(family: string, taskSeed: number): World | null {
    const id = `${family}:${taskSeed}`;
    const hit = this.cache.get(id);
    if (hit) return hit;
    const rng = new Rng(hashString(`textworld|${this.seed}|${id}`));
    const c = this.config;
    for (let a = 0; a < ATTEMPTS; a++) {
      const goal = family === "fetch" || family === "place" ? family : rng.next() < 0.5 ? "fetch" : "place";
      const opts: GenerateOptions = {
        rooms: family === "larger-map" ? c.oodRooms : c.rooms,
        goal,
        lockedProb: family === "locked" ? 1 : c.lockedProb,
        keyElsewhere: family === "locked",
        distractors: c.distractors,
        containerProb: c.containerProb,
      };
      const w = generateWorld(rng, opts);
      if (!w || optimalSteps(w, c.stepBudget, c.maxContextWords, c.stepCounter === 1) > c.stepBudget) continue;
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(id, w);
      return w;
    }
    return null;
  }

  /**
   * In-domain worlds go to train, validation or test by a hash of their content, so equal worlds share a
   * split; with heldOutGoals, by a hash of their goal, so no held-out goal is a training goal. Compared in
   * ten-thousandths exactly as the test split always was, so test keeps the same worlds.
   */
  splitOf(w: World): InDomainSplit {
    const key = this.config.heldOutGoals ? `goal|${answerOf(w)}` : signature(w);
    const c = this.config;
    return inDomainSplit(hashString(`${this.seed}|${key}`) % 10000, c.testFraction * 10000, c.validationFraction * 10000);
  }

  sampleTask(rng: Rng, split: Split, family?: string): Task {
    const families = split === "ood" ? this.families.ood : this.families.train;
    const fam = family ?? rng.pick(families);
    if (!families.includes(fam)) throw new Error(`textworld: family "${fam}" is not in the ${split} split (have: ${families.join(", ")})`);
    for (let tries = 0; tries < 10000; tries++) {
      const taskSeed = rng.nextUint32();
      const w = this.world(fam, taskSeed);
      if (!w) continue;
      // heldOutGoals: held-out families, too, ask only for goals training never asks for.
      const want = split === "ood" ? (this.config.heldOutGoals ? "test" : null) : split;
      if (want && this.splitOf(w) !== want) continue;
      return { id: `${fam}/${taskSeed}`, family: fam, split, prompt: goalWords(w), answer: answerOf(w) };
    }
    throw new Error(`textworld: could not generate a ${fam} task within ${this.config.stepBudget} steps; raise spec.environment.config.stepBudget`);
  }

  async start(task: Task): Promise<Episode> {
    return new TextworldEpisode(task, this.worldOf(task), this.config.maxContextWords, this.config.stepCounter === 1);
  }

  private worldOf(task: Task): World {
    const m = /^([a-z-]+)\/(\d+)$/.exec(task.id);
    const w = m && ALL_FAMILIES.includes(m[1]) ? this.world(m[1], Number(m[2])) : null;
    if (!w) throw new Error(`textworld: "${task.id}" is not a textworld task id`);
    return w;
  }

  demonstrator(_task: Task, rng: Rng, suboptimal: boolean): (episode: Episode) => Promise<string[]> {
    const play = textworldPlayer(rng, suboptimal);
    return async (episode) => {
      if (!(episode instanceof TextworldEpisode)) throw new Error("textworld demonstrator: not a textworld episode");
      return play(episode);
    };
  }
}

function answerOf(w: World): string {
  const g = w.goal;
  const room = w.rooms[g.room].name;
  return g.kind === "fetch" ? `take ${g.item} ${room}` : `put ${g.item} ${g.container} ${room}`;
}

export function createTextworld(config: Record<string, unknown>, seed: number): Environment {
  return new Textworld(parseTextworldConfig(config), seed);
}
