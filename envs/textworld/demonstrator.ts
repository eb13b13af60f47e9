// The scripted textworld agent. It plans only from what the agent's context shows (the rooms it still
// remembers within the word budget, their exits and visible items, see `TextworldEpisode.known`), never
// from the hidden map or from memories the context dropped: go to the goal room by the shortest known route,
// explore the nearest unvisited room when the goal room is not yet known, fetch the key when a
// locked door is in the way. The sub-optimal variant makes one plausible mistake: a wrong turn and
// some wandering, misreading the goal room (it goes and searches another room first), or, for
// `place`, walking to the container before picking up the object.
import type { Rng } from "../../core/rng.ts";
import type { TextworldEpisode } from "./episode.ts";
import { edgeKey } from "./world.ts";
import { DIRS, type Dir, KEY } from "./words.ts";

export type Mistake = "wrong-turn" | "wrong-room" | "forget-item";

interface Decision {
  words: string[];
  /** The move this decision makes, when it is a `go`. */
  go?: Dir;
}

const call = (tool: string, ...args: string[]): string[] => [tool, "[", ...args, "]"];

/** First step of the shortest known route from the agent's room to `target` (BFS in DIRS order). */
function route(ep: TextworldEpisode, target: (room: number) => boolean, allowLocked: boolean): { dir: Dir; room: number } | null {
  const known = new Set(ep.known());
  const first = new Map<number, Dir | null>([[ep.at, null]]);
  const queue = [ep.at];
  while (queue.length > 0) {
    const cur = queue.shift()!;
    if (cur !== ep.at && target(cur)) return { dir: first.get(cur)!, room: cur };
    if (!known.has(cur)) continue; // exits of unvisited rooms are unknown
    for (const d of DIRS) {
      const nb = ep.world.rooms[cur].exits[d];
      if (nb === undefined || first.has(nb)) continue;
      if (!allowLocked && ep.locked.has(edgeKey(cur, nb))) continue;
      first.set(nb, cur === ep.at ? d : first.get(cur)!);
      queue.push(nb);
    }
  }
  return null;
}

export function optimalDecision(ep: TextworldEpisode, pretendCarrying = false): Decision {
  const g = ep.goal;
  const here = ep.visibleItems(ep.at);
  if (g.kind === "place" && !pretendCarrying && !ep.inventory.includes(g.item)) {
    if (here.includes(g.item)) return { words: ["the", g.item, "is", "here", ".", ...call("take", g.item)] };
    const seen = (r: number) => ep.known().includes(r) && ep.visibleItems(r).includes(g.item);
    return moveTo(ep, seen, ["i", "need", "the", g.item, "."]);
  }
  if (ep.at === g.room) {
    const c = ep.containerIn(ep.at);
    if (g.kind === "fetch") {
      if (here.includes(g.item)) return { words: ["the", g.item, "is", "here", ".", ...call("take", g.item)] };
      if (c && !c.open) return { words: ["the", g.item, "must", "be", "in", "the", c.name, ".", ...call("open", c.name)] };
    } else if (c && c.name === g.container) {
      if (!c.open) return { words: ["the", c.name, "is", "closed", ".", ...call("open", c.name)] };
      return { words: ["i", "carry", "the", g.item, "and", "the", c.name, "is", "open", ".", ...call("put", g.item, "in", c.name)] };
    }
  }
  return moveTo(ep, (r) => r === g.room, []);
}

/** Head for the first room satisfying `target` (known route, locks handled), else explore. */
function moveTo(ep: TextworldEpisode, target: (room: number) => boolean, why: string[]): Decision {
  const step = route(ep, target, true);
  if (step) {
    if (ep.isLocked(ep.at, step.dir)) return handleLock(ep, step.dir);
    return { words: [...why, "the", ep.world.rooms[step.room].name, "is", "reached", "via", step.dir, ".", ...call("go", step.dir)], go: step.dir };
  }
  return explore(ep, why);
}

function explore(ep: TextworldEpisode, why: string[]): Decision {
  const unvisited = (r: number) => !ep.known().includes(r);
  const open = route(ep, unvisited, false);
  if (open) return { words: [...why, "explore", "the", ep.world.rooms[open.room].name, ".", ...call("go", open.dir)], go: open.dir };
  const behindLock = route(ep, unvisited, true);
  if (behindLock && ep.isLocked(ep.at, behindLock.dir)) return handleLock(ep, behindLock.dir);
  if (behindLock) return { words: [...why, "explore", "the", ep.world.rooms[behindLock.room].name, ".", ...call("go", behindLock.dir)], go: behindLock.dir };
  // Nothing left to explore: the goal is unreachable from what is known (never generated).
  return { words: ["i", "try", ".", ...call("go", DIRS[0])], go: DIRS[0] };
}

function handleLock(ep: TextworldEpisode, dir: Dir): Decision {
  if (ep.inventory.includes(KEY)) return { words: ["the", "door", dir, "is", "locked", "and", "i", "carry", "the", KEY, ".", ...call("unlock", dir)] };
  if (ep.visibleItems(ep.at).includes(KEY)) return { words: ["the", "door", dir, "is", "locked", ".", "the", KEY, "is", "here", ".", ...call("take", KEY)] };
  const seen = (r: number) => ep.known().includes(r) && ep.visibleItems(r).includes(KEY);
  const step = route(ep, seen, false);
  if (step) return { words: ["i", "need", "the", KEY, "in", "the", ep.world.rooms[step.room].name, ".", ...call("go", step.dir)], go: step.dir };
  const unvisited = (r: number) => !ep.known().includes(r);
  const open = route(ep, unvisited, false);
  if (open) return { words: ["i", "need", "the", KEY, ".", "explore", "the", ep.world.rooms[open.room].name, ".", ...call("go", open.dir)], go: open.dir };
  return { words: ["i", "need", "the", KEY, ".", "i", "try", ".", ...call("unlock", dir)] };
}

/** Open exits of the current room other than `avoid`. */
function otherExits(ep: TextworldEpisode, avoid: (d: Dir) => boolean): Dir[] {
  return DIRS.filter((d) => !avoid(d) && ep.world.rooms[ep.at].exits[d] !== undefined && !ep.isLocked(ep.at, d));
}

/** A stateful player for one episode. */
export function textworldPlayer(rng: Rng, suboptimal: boolean): (ep: TextworldEpisode) => string[] {
  let mistake: Mistake | null = null;
  let wander = 0;
  let cameFrom = -1;
  let lastAt = -1;
  let forgetting = false;
  let wrongRoom = -1;
  return (ep) => {
    if (lastAt === -1 && suboptimal) {
      const kinds: Mistake[] = ["wrong-turn", "wrong-room"];
      if (ep.goal.kind === "place") kinds.push("forget-item");
      mistake = rng.pick(kinds);
      if (mistake === "wrong-room") {
        const others = ep.world.rooms.map((_, i) => i).filter((r) => r !== ep.goal.room && r !== ep.at);
        if (others.length > 0) wrongRoom = rng.pick(others);
        mistake = null;
      }
    }
    if (ep.at !== lastAt) {
      cameFrom = lastAt;
      lastAt = ep.at;
    }
    return decide(ep);
  };

  function decide(ep: TextworldEpisode): string[] {
    if (wander > 0) {
      // Still on the wrong track: keep going away from where the agent came from.
      wander--;
      const away = otherExits(ep, (d) => ep.world.rooms[ep.at].exits[d] === cameFrom);
      if (away.length > 0) {
        const d = rng.pick(away);
        return ["maybe", "it", "is", "via", d, ".", ...call("go", d)];
      }
      wander = 0;
    }
    if (wrongRoom >= 0) {
      // Misreads the goal room: heads for another room and searches it before correcting.
      const room = ep.world.rooms[wrongRoom].name;
      if (ep.at !== wrongRoom) return moveTo(ep, (r) => r === wrongRoom, []).words;
      wrongRoom = -1;
      const c = ep.containerIn(ep.at);
      const item = ep.goal.item;
      if (c && !c.open) return ["the", item, "must", "be", "in", "the", c.name, ".", ...call("open", c.name)];
      if (ep.goal.kind === "place" && c && ep.inventory.includes(item))
        return ["i", "carry", "the", item, "and", "the", c.name, "is", "open", ".", ...call("put", item, "in", c.name)];
      return ["the", item, "is", "in", "the", room, ".", ...call("take", item)];
    }
    if (forgetting) {
      if (ep.at !== ep.goal.room) return optimalDecision(ep, true).words;
      forgetting = false;
    }
    const best = optimalDecision(ep);
    if (mistake === "wrong-turn" && best.go) {
      const wrong = otherExits(ep, (d) => d === best.go);
      if (wrong.length > 0) {
        const d = rng.pick(wrong);
        mistake = null;
        wander = 1 + rng.int(2);
        return ["maybe", "it", "is", "via", d, ".", ...call("go", d)];
      }
    }
    if (mistake === "forget-item" && ep.goal.kind === "place" && !ep.inventory.includes(ep.goal.item) && ep.at !== ep.goal.room) {
      mistake = null;
      forgetting = true;
      return optimalDecision(ep, true).words;
    }
    return best.words;
  }
}
