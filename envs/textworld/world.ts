// A textworld map: rooms on a grid joined by doors (a tree, so every direction is consistent), at
// most one locked door with its key, one container per room at most, and objects on floors or in
// containers. The generator is pure given its Rng; the episode copies the mutable parts.
import type { Rng } from "../../core/rng.ts";
import { CONTAINERS, DELTA, DIRS, type Dir, KEY, OBJECTS, OPPOSITE, ROOM_NAMES } from "./words.ts";

export interface RoomDef {
  name: string;
  x: number;
  y: number;
  exits: Partial<Record<Dir, number>>;
}

export interface ContainerDef {
  name: string;
  room: number;
  open: boolean;
  items: string[];
}

export type Goal = { kind: "fetch"; item: string; room: number } | { kind: "place"; item: string; container: string; room: number };

export interface World {
  rooms: RoomDef[];
  start: number;
  /** Items lying on each room's floor. */
  floor: string[][];
  containers: ContainerDef[];
  /** Locked doors as edge keys (see `edgeKey`). */
  locked: string[];
  goal: Goal;
}

export function edgeKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

export interface LayoutOptions {
  rooms: number;
}

/** A random tree of `n` rooms on the grid, grown from room 0 at the origin. */
export function layout(rng: Rng, n: number): RoomDef[] {
  const names = rng.shuffle([...ROOM_NAMES]).slice(0, n);
  const rooms: RoomDef[] = [{ name: names[0], x: 0, y: 0, exits: {} }];
  const taken = new Set<string>(["0,0"]);
  while (rooms.length < n) {
    const from = rng.int(rooms.length);
    const dir = rng.pick(DIRS);
    const r = rooms[from];
    if (r.exits[dir] !== undefined) continue;
    const [dx, dy] = DELTA[dir];
    const x = r.x + dx;
    const y = r.y + dy;
    if (taken.has(`${x},${y}`)) continue;
    taken.add(`${x},${y}`);
    const idx = rooms.length;
    rooms.push({ name: names[idx], x, y, exits: { [OPPOSITE[dir]]: from } });
    r.exits[dir] = idx;
  }
  return rooms;
}

/** Shortest path (room indices, start included) in the full map, ignoring locks. */
export function pathBetween(rooms: RoomDef[], from: number, to: number): number[] {
  const prev = new Map<number, number>([[from, -1]]);
  const queue = [from];
  while (queue.length > 0) {
    const cur = queue.shift()!;
    if (cur === to) break;
    for (const d of DIRS) {
      const nb = rooms[cur].exits[d];
      if (nb !== undefined && !prev.has(nb)) {
        prev.set(nb, cur);
        queue.push(nb);
      }
    }
  }
  const path: number[] = [];
  for (let cur = to; cur !== -1; cur = prev.get(cur)!) path.unshift(cur);
  return path;
}

/** Rooms reachable from `from` without crossing a locked door. */
export function reachable(rooms: RoomDef[], from: number, locked: ReadonlySet<string>): Set<number> {
  const seen = new Set<number>([from]);
  const stack = [from];
  while (stack.length > 0) {
    const cur = stack.pop()!;
    for (const d of DIRS) {
      const nb = rooms[cur].exits[d];
      if (nb !== undefined && !seen.has(nb) && !locked.has(edgeKey(cur, nb))) {
        seen.add(nb);
        stack.push(nb);
      }
    }
  }
  return seen;
}

export interface GenerateOptions {
  rooms: number;
  goal: "fetch" | "place";
  /** Lock a door on the way to the goal room with this probability (key on the start room's floor). */
  lockedProb: number;
  /** Lock a door on the way and hide its key in another room reached without crossing it. */
  keyElsewhere: boolean;
  distractors: number;
  containerProb: number;
}

/** One candidate world (the caller rejects those its demonstrator cannot finish within budget). */
export function generateWorld(rng: Rng, o: GenerateOptions): World | null {
  const rooms = layout(rng, o.rooms);
  const n = rooms.length;
  const floor: string[][] = rooms.map(() => []);
  const containerNames = rng.shuffle([...CONTAINERS]);
  const containers: ContainerDef[] = [];
  for (let r = 0; r < n; r++) {
    if (rng.next() < o.containerProb) containers.push({ name: containerNames[containers.length], room: r, open: rng.next() < 0.3, items: [] });
  }
  const objects = rng.shuffle([...OBJECTS]);
  const item = objects[0];
  const start = 0;
  let goal: Goal;
  if (o.goal === "fetch") {
    const room = 1 + rng.int(n - 1);
    const c = containers.find((k) => k.room === room);
    if (c && rng.next() < 0.5) c.items.push(item);
    else floor[room].push(item);
    goal = { kind: "fetch", item, room };
  } else {
    const targets = containers.filter((k) => k.room !== start);
    if (targets.length === 0) return null;
    const c = rng.pick(targets);
    floor[start].push(item);
    goal = { kind: "place", item, container: c.name, room: c.room };
  }
  const locked: string[] = [];
  const path = pathBetween(rooms, start, goal.room);
  if (o.keyElsewhere || rng.next() < o.lockedProb) {
    const i = rng.int(path.length - 1);
    const key = edgeKey(path[i], path[i + 1]);
    locked.push(key);
    if (o.keyElsewhere) {
      const options = [...reachable(rooms, start, new Set(locked))].filter((r) => r !== start);
      if (options.length === 0) return null;
      const room = rng.pick(options);
      const c = containers.find((k) => k.room === room && k.open);
      if (c && rng.next() < 0.5) c.items.push(KEY);
      else floor[room].push(KEY);
    } else {
      floor[start].push(KEY);
    }
  }
  for (let i = 0; i < o.distractors; i++) {
    const obj = objects[1 + i];
    const room = rng.int(n);
    const c = containers.find((k) => k.room === room);
    if (c && rng.next() < 0.5) c.items.push(obj);
    else floor[room].push(obj);
  }
  return { rooms, start, floor, containers, locked, goal };
}

/** A canonical description of the world: equal worlds give equal signatures (split assignment). */
export function signature(w: World): string {
  const rooms = w.rooms.map((r) => `${r.name}@${r.x},${r.y}:${DIRS.map((d) => r.exits[d] ?? "-").join(",")}`).join(";");
  const floor = w.floor.map((f) => [...f].sort().join(",")).join(";");
  const containers = w.containers.map((c) => `${c.name}@${c.room}:${c.open ? "o" : "c"}:${[...c.items].sort().join(",")}`).join(";");
  const goal = w.goal.kind === "fetch" ? `fetch:${w.goal.item}:${w.goal.room}` : `place:${w.goal.item}:${w.goal.container}:${w.goal.room}`;
  return `${rooms}|${floor}|${containers}|${[...w.locked].sort().join(",")}|${goal}`;
}
