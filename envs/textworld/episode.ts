// One textworld episode: mutable world state, the five commands, and the context rebuilt from state
// each step (goal, remembered rooms oldest first, last result, current room).
import type { Episode, StepOutcome, Task } from "../environment.ts";
import { isParseError, parseToolCall } from "../action-parser.ts";
import { type ContainerDef, edgeKey, type Goal, type World } from "./world.ts";
import { CONTAINERS, DIRS, type Dir, digitWords, KEY, OBJECTS, STEP_WORD, TOOLS } from "./words.ts";

const DIR_SET = new Set<string>(DIRS);
const CONTAINER_SET = new Set<string>(CONTAINERS);
const ITEM_SET = new Set<string>([...OBJECTS, KEY]);

/** The task prompt: the goal as words. */
export function goalWords(world: World): string[] {
  const g = world.goal;
  const room = world.rooms[g.room].name;
  if (g.kind === "fetch") return ["take", "the", g.item, "in", "the", room];
  return ["put", "the", g.item, "in", "the", g.container, "in", "the", room];
}

class CommandError extends Error {}

function fail(...words: string[]): never {
  throw new CommandError(["error", ":", ...words, "."].join(" "));
}

export class TextworldEpisode implements Episode {
  at: number;
  readonly inventory: string[] = [];
  readonly floor: string[][];
  readonly containers: ContainerDef[];
  readonly locked: Set<string>;
  /** Visited rooms, least recently left first; the current room is last. */
  readonly visited: number[];
  lastResult: string[] | null = null;
  /** Actions taken so far, errors included (what the step counter shows). */
  steps = 0;
  done = false;
  success = false;
  readonly goal: Goal;

  constructor(
    readonly task: Task,
    readonly world: World,
    private readonly maxContextWords: number,
    /** Start the room description with the steps taken (config `stepCounter`). */
    private readonly stepCounter = false,
  ) {
    this.at = world.start;
    this.floor = world.floor.map((f) => [...f]);
    this.containers = world.containers.map((c) => ({ ...c, items: [...c.items] }));
    this.locked = new Set(world.locked);
    this.visited = [world.start];
    this.goal = world.goal;
  }

  containerIn(room: number): ContainerDef | undefined {
    return this.containers.find((c) => c.room === room);
  }

  /** Items the agent can see in a room: the floor and the inside of open containers. */
  visibleItems(room: number): string[] {
    const c = this.containerIn(room);
    return [...this.floor[room], ...(c?.open ? c.items : [])];
  }

  isLocked(room: number, dir: Dir): boolean {
    const nb = this.world.rooms[room].exits[dir];
    return nb !== undefined && this.locked.has(edgeKey(room, nb));
  }

  private exitWords(room: number): string[] {
    const out: string[] = [];
    for (const d of DIRS) {
      const nb = this.world.rooms[room].exits[d];
      if (nb === undefined) continue;
      if (out.length > 0) out.push(",");
      out.push(d, this.world.rooms[nb].name);
      if (this.locked.has(edgeKey(room, nb))) out.push("(", "locked", ")");
    }
    return out;
  }

  private thingWords(room: number): string[] {
    const out: string[] = [];
    const c = this.containerIn(room);
    if (c) {
      out.push(c.name, "(");
      if (!c.open) out.push("closed");
      else out.push("open", ":", ...(c.items.length > 0 ? c.items : ["empty"]));
      out.push(")");
    }
    for (const it of this.floor[room]) {
      if (out.length > 0) out.push(",");
      out.push(it);
    }
    return out.length > 0 ? out : ["nothing"];
  }

  /** The current room as the agent sees it. */
  describe(): string[] {
    const room = this.world.rooms[this.at];
    return [
      ...(this.stepCounter ? [STEP_WORD, ...digitWords(this.steps), "."] : []),
      "you",
      "are",
      "in",
      "the",
      room.name,
      ".",
      "exits",
      ":",
      ...this.exitWords(this.at),
      ".",
      "you",
      "see",
      ":",
      ...this.thingWords(this.at),
      ".",
      "you",
      "carry",
      ":",
      ...(this.inventory.length > 0 ? this.inventory : ["nothing"]),
      ".",
    ];
  }

  /** A room visited earlier, as remembered (nothing changes in a room while the agent is away). */
  private memoryWords(room: number): string[] {
    return ["remember", this.world.rooms[room].name, ":", "exits", ...this.exitWords(room), ".", "you", "saw", ":", ...this.thingWords(room), "."];
  }

  /** The context's parts: which remembered rooms fit the word budget (oldest first) and whether the last result does. */
  private layout(): { goal: string[]; kept: number[]; last: string[]; current: string[] } {
    const goal = ["goal", ":", ...goalWords(this.world), "."];
    const current = ["<obs>", ...this.describe(), "</obs>"];
    const last = this.lastResult ? ["<obs>", ...this.lastResult, "</obs>"] : [];
    const rooms = this.visited.slice(0, -1);
    // Drop the oldest evidence first: remembered rooms (least recent first), then the last result;
    // never the goal. The current room is the newest evidence and goes last.
    let budget = this.maxContextWords - goal.length - current.length;
    const lastFits = last.length <= budget;
    if (lastFits) budget -= last.length;
    const kept: number[] = [];
    for (let i = rooms.length - 1; i >= 0; i--) {
      const n = this.memoryWords(rooms[i]).length + 2;
      if (n > budget) break;
      kept.unshift(rooms[i]);
      budget -= n;
    }
    return { goal, kept, last: lastFits ? last : [], current };
  }

  /**
   * Rooms the agent knows from its context: the remembered rooms the word budget keeps, then the
   * current room. The demonstrator plans from these only, so a clone that sees the context can
   * imitate it (a room whose memory was dropped is as unknown to it as one never visited).
   */
  known(): number[] {
    return [...this.layout().kept, this.at];
  }

  context(): string[] {
    const { goal, kept, last, current } = this.layout();
    const memories = kept.flatMap((r) => ["<obs>", ...this.memoryWords(r), "</obs>"]);
    return [...goal, ...memories, ...last, ...current].slice(0, this.maxContextWords);
  }

  stateKey(): string {
    const cs = this.containers.map((c) => `${c.name}${c.open ? "+" : "-"}${c.items.join(",")}`).join(";");
    const fl = this.floor.map((f) => f.join(",")).join(";");
    return `${this.task.id}|at=${this.at}|inv=${this.inventory.join(",")}|${fl}|${cs}|locked=${[...this.locked].join(",")}|seen=${[...this.visited].sort((a, b) => a - b).join(",")}`;
  }

  goalReached(): boolean {
    const g = this.goal;
    if (g.kind === "fetch") return this.inventory.includes(g.item);
    return this.containers.some((c) => c.name === g.container && c.items.includes(g.item));
  }

  async step(action: string[]): Promise<StepOutcome> {
    return this.stepSync(action);
  }

  /** `step` without the promise (task generation simulates the demonstrator synchronously). */
  stepSync(action: string[]): StepOutcome {
    if (this.done) {
      const observation = ["<obs>", "error", ":", "the", "episode", "is", "over", ".", "</obs>"];
      return { observation, reward: 0, done: true, success: this.success, error: "episode already finished" };
    }
    let result: string[];
    let error: string | undefined;
    this.steps++;
    try {
      result = this.apply(action);
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      result = e.message.split(" ");
      error = e.message;
    }
    if (!error && this.goalReached()) {
      this.done = true;
      this.success = true;
      result.push("goal", "complete", ".");
    }
    this.lastResult = result;
    const observation = ["<obs>", ...result, "</obs>", "<obs>", ...this.describe(), "</obs>"];
    return { observation, reward: this.done && this.success ? 1 : 0, done: this.done, success: this.success, ...(error ? { error } : {}) };
  }

  private apply(action: string[]): string[] {
    const call = parseToolCall(action, TOOLS);
    if (isParseError(call)) fail(...call.error.split(" "));
    const { tool, args } = call;
    switch (tool) {
      case "go":
        return this.go(args);
      case "take":
        return this.take(args);
      case "open":
        return this.open(args);
      case "unlock":
        return this.unlock(args);
      default:
        return this.put(args);
    }
  }

  private go(args: string[]): string[] {
    if (args.length !== 1 || !DIR_SET.has(args[0])) fail("go", "needs", "a", "direction");
    const d = args[0] as Dir;
    const nb = this.world.rooms[this.at].exits[d];
    if (nb === undefined) fail("there", "is", "no", "exit", d);
    if (this.locked.has(edgeKey(this.at, nb))) fail("the", "door", d, "is", "locked");
    this.at = nb;
    const i = this.visited.indexOf(nb);
    if (i >= 0) this.visited.splice(i, 1);
    this.visited.push(nb);
    return ["you", "go", d, "."];
  }

  private take(args: string[]): string[] {
    if (args.length !== 1) fail("take", "needs", "one", "item");
    const it = args[0];
    if (CONTAINER_SET.has(it) && this.containerIn(this.at)?.name === it) fail("the", it, "can", "not", "be", "taken");
    if (!ITEM_SET.has(it)) fail("you", "see", "no", "such", "thing", "here");
    const fi = this.floor[this.at].indexOf(it);
    if (fi >= 0) this.floor[this.at].splice(fi, 1);
    else {
      const c = this.containerIn(this.at);
      const ci = c?.open ? c.items.indexOf(it) : -1;
      if (!c || ci < 0) fail("you", "see", "no", it, "here");
      c.items.splice(ci, 1);
    }
    this.inventory.push(it);
    return ["you", "take", "the", it, "."];
  }

  private open(args: string[]): string[] {
    if (args.length !== 1) fail("open", "needs", "one", "container");
    const c = this.containerIn(this.at);
    if (!c || c.name !== args[0]) fail("you", "see", "no", "such", "container", "here");
    if (c.open) fail("the", c.name, "is", "already", "open");
    c.open = true;
    return ["you", "open", "the", c.name, "."];
  }

  private unlock(args: string[]): string[] {
    if (args.length !== 1 || !DIR_SET.has(args[0])) fail("unlock", "needs", "a", "direction");
    const d = args[0] as Dir;
    if (!this.isLocked(this.at, d)) fail("there", "is", "no", "locked", "door", d);
    if (!this.inventory.includes(KEY)) fail("you", "need", "the", KEY);
    this.locked.delete(edgeKey(this.at, this.world.rooms[this.at].exits[d]!));
    return ["you", "unlock", "the", "door", d, "."];
  }

  private put(args: string[]): string[] {
    if (args.length !== 3 || args[1] !== "in") fail("write", "put", "[", "item", "in", "container", "]");
    const [it, , name] = args;
    if (!ITEM_SET.has(it) || !this.inventory.includes(it)) fail("you", "do", "not", "carry", "such", "item");
    const c = this.containerIn(this.at);
    if (!c || c.name !== name) fail("you", "see", "no", "such", "container", "here");
    if (!c.open) fail("the", c.name, "is", "closed");
    this.inventory.splice(this.inventory.indexOf(it), 1);
    c.items.push(it);
    return ["you", "put", "the", it, "in", "the", c.name, "."];
  }
}
