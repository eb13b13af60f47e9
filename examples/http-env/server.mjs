#!/usr/bin/env node
// A reference environment server for steppo's http environment (envs/http/PROTOCOL.md): plain
// node:http, no dependencies. The task is arithmetic with a calculator tool:
//
//   question : what is 8 plus 7 ?            (the prompt)
//   first calc [ 8 + 7 ]                     → calc 8 + 7 = 15
//   answer [ 15 ]                            → answer 15 is correct   (reward 1, done)
//
// Families: in-domain `add` and `sub` (one calculation), held out `chain` ("what is 8 plus 7 minus 5 ?",
// two calculations). The test split holds out a fixed fifth of the (operation, a, b) questions and the
// validation split another fifth (taken from train when the split was added: test kept its questions),
// which the train split never asks: 15 add and 9 sub questions in test, 17 and 9 in validation (of 81 and
// 45; server.py's crc32 split: 22 and 8, 15 and 7). Everything is deterministic in (split, family, seed), as the protocol requires.
//
// Usage: node examples/http-env/server.mjs [--port 8765] [--host 127.0.0.1]   (--port 0: any free port)
// Prints "listening on http://HOST:PORT" once it accepts requests.
import { createServer } from "node:http";
import { parseArgs } from "node:util";

const FAMILIES = { train: ["add", "sub"], ood: ["chain"] };
/** Operands are single digits: enough for the tiny quickstart-sized model to learn in minutes. */
const OPERAND_MAX = 9;
/** Numbers the agent can read and write; a calculation outside this range is an error. */
const NUMBER_MAX = 50;
const TOOLS = ["calc", "answer"];
/** Episodes kept at most; the oldest are forgotten first (clients never close episodes). */
const EPISODE_LIMIT = 10_000;
const BODY_LIMIT = 64 * 1024;

const MALFORMED = "error : use calc [ a + b ] or calc [ a - b ] or answer [ n ]";
const OUT_OF_RANGE = `error : numbers go from 0 to ${NUMBER_MAX}`;

function vocabulary() {
  const numbers = Array.from({ length: NUMBER_MAX + 1 }, (_, i) => String(i));
  const phrases = ["question : what is plus minus ?", "calc [ ] answer + - =", "is correct wrong", MALFORMED, OUT_OF_RANGE, "first then"];
  return [...new Set([...numbers, ...phrases.join(" ").split(" ")])];
}

/** mulberry32: a small seeded PRNG, so a (split, family, seed) triple always gives the same task. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The split of a one-step question: a held-out fifth for test, another for validation, the rest train. */
function splitOfQuestion(op, a, b) {
  return ["test", "validation"][hash(`${op}|${a}|${b}`) % 5] ?? "train";
}

/** A task: the prompt, the calculations the optimal agent makes, and the answer. */
function makeTask(split, family, seed) {
  const rand = prng(seed ^ hash(family));
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
  for (;;) {
    if (family === "chain") {
      const a = int(1, OPERAND_MAX);
      const b = int(1, OPERAND_MAX);
      const c = int(1, Math.min(OPERAND_MAX, a + b));
      return {
        prompt: `question : what is ${a} plus ${b} minus ${c} ?`,
        steps: [
          [a, "+", b],
          [a + b, "-", c],
        ],
        answer: a + b - c,
      };
    }
    let a = int(1, OPERAND_MAX);
    let b = int(1, OPERAND_MAX);
    if (family === "sub" && a < b) [a, b] = [b, a];
    const op = family === "add" ? "+" : "-";
    if (splitOfQuestion(op, a, b) !== split) continue;
    return { prompt: `question : what is ${a} ${family === "add" ? "plus" : "minus"} ${b} ?`, steps: [[a, op, b]], answer: op === "+" ? a + b : a - b };
  }
}

/** The single tool call ending the action, or an error message. Reasoning words may precede it. */
function parseCall(words) {
  const opens = words.flatMap((w, i) => (w === "[" ? [i] : []));
  if (opens.length !== 1 || words.at(-1) !== "]") return null;
  const tool = words[opens[0] - 1];
  if (!TOOLS.includes(tool)) return null;
  return { tool, args: words.slice(opens[0] + 1, -1) };
}

function number(word) {
  return /^\d+$/.test(word ?? "") ? Number(word) : null;
}

function step(episode, action) {
  const call = parseCall(action.split(/\s+/).filter(Boolean));
  if (!call) return { observation: MALFORMED, reward: 0, done: false, success: false, error: "malformed action" };
  if (call.tool === "answer") {
    const n = call.args.length === 1 ? number(call.args[0]) : null;
    if (n === null) return { observation: MALFORMED, reward: 0, done: false, success: false, error: "answer needs one number" };
    const success = n === episode.task.answer;
    episode.done = true;
    return { observation: `answer ${n} is ${success ? "correct" : "wrong"}`, reward: success ? 1 : 0, done: true, success };
  }
  const [x, op, y] = [number(call.args[0]), call.args[1], number(call.args[2])];
  if (call.args.length !== 3 || x === null || y === null || (op !== "+" && op !== "-")) {
    return { observation: MALFORMED, reward: 0, done: false, success: false, error: "calc needs a + b or a - b" };
  }
  const result = op === "+" ? x + y : x - y;
  if (x > NUMBER_MAX || y > NUMBER_MAX || result < 0 || result > NUMBER_MAX) {
    return { observation: OUT_OF_RANGE, reward: 0, done: false, success: false, error: "number out of range" };
  }
  episode.results.push(result);
  return { observation: `calc ${x} ${op} ${y} = ${result}`, reward: 0, done: false, success: false };
}

/**
 * The scripted next action. Optimal: the task's calculations in order, then the answer. Sub-optimal
 * (one mistake per episode, chosen by `seed`): answer at once with the question's first number (a
 * guess), or use the other operation in the first calculation and carry on honestly from its result.
 */
function demonstrate(episode, suboptimal, seed) {
  const { steps } = episode.task;
  const made = episode.results.length;
  if (made === steps.length) return `answer [ ${episode.results[made - 1]} ]`;
  const [a, op, b] = steps[made];
  if (made === 0 && suboptimal) {
    if (seed % 2 === 0) return `answer [ ${a} ]`;
    return `first calc [ ${op === "+" ? `${Math.max(a, b)} - ${Math.min(a, b)}` : `${a} + ${b}`} ]`;
  }
  const left = made === 0 ? a : episode.results[made - 1];
  // After a wrong first result the next subtraction may leave the range: give that result up as the answer.
  if (op === "-" && left < b) return `answer [ ${left} ]`;
  return `${made === 0 ? "first" : "then"} calc [ ${left} ${op} ${b} ]`;
}

// ---- HTTP ---------------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const episodes = new Map();
let nextEpisode = 1;

function field(body, key, check, what) {
  if (!check(body[key])) throw new HttpError(400, `${key}: expected ${what}`);
  return body[key];
}

function episodeOf(body) {
  const id = field(body, "episodeId", (v) => typeof v === "string", "a string");
  const episode = episodes.get(id);
  if (!episode) throw new HttpError(404, `episodeId: unknown episode ${JSON.stringify(id)}`);
  return episode;
}

const ROUTES = {
  "GET /info": () => ({ name: "calculator", vocabulary: vocabulary(), families: FAMILIES, demonstrations: true, validation: true }),
  "POST /reset": (body) => {
    const split = field(body, "split", (v) => ["train", "validation", "test", "ood"].includes(v), "train, validation, test or ood");
    const families = split === "ood" ? FAMILIES.ood : FAMILIES.train;
    const family = field(body, "family", (v) => families.includes(v), `one of ${families.join(", ")} for split ${split}`);
    const seed = field(body, "seed", (v) => Number.isInteger(v) && v >= 0, "an integer >= 0");
    const task = makeTask(split, family, seed);
    const episodeId = `e${nextEpisode++}`;
    episodes.set(episodeId, { task, results: [], done: false });
    if (episodes.size > EPISODE_LIMIT) episodes.delete(episodes.keys().next().value);
    return { episodeId, prompt: task.prompt, observation: "" };
  },
  "POST /step": (body) => {
    const episode = episodeOf(body);
    if (episode.done) throw new HttpError(409, "the episode is over");
    return step(
      episode,
      field(body, "action", (v) => typeof v === "string", "a string"),
    );
  },
  "POST /demonstrate": (body) => {
    const episode = episodeOf(body);
    const suboptimal = field(body, "suboptimal", (v) => typeof v === "boolean", "true or false");
    const seed = field(body, "seed", (v) => Number.isInteger(v) && v >= 0, "an integer >= 0");
    return { action: demonstrate(episode, suboptimal, seed) };
  },
};

async function readJson(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > BODY_LIMIT) throw new HttpError(413, "request body too large");
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text === "") return {};
  try {
    const body = JSON.parse(text);
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an object");
    return body;
  } catch {
    throw new HttpError(400, "the request body must be a JSON object");
  }
}

function send(res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

const server = createServer(async (req, res) => {
  try {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const route = ROUTES[`${req.method} ${path}`];
    if (!route) throw new HttpError(404, `no route ${req.method} ${path}`);
    send(res, 200, route(await readJson(req)));
  } catch (err) {
    if (err instanceof HttpError) send(res, err.status, { error: err.message });
    else send(res, 500, { error: String(err?.message ?? err) });
  }
});

const { values } = parseArgs({ options: { port: { type: "string", default: "8765" }, host: { type: "string", default: "127.0.0.1" } } });
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`listening on http://${values.host}:${server.address().port}\n`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
