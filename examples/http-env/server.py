#!/usr/bin/env python3
"""The calculator environment of server.mjs, in Python (standard library only), to show that the
protocol (envs/http/PROTOCOL.md) is language-neutral. Same task, families and words; its
tasks are drawn with Python's own PRNG, so a seed gives another question than in server.mjs.

Usage: python3 examples/http-env/server.py [--port 8765] [--host 127.0.0.1]   (--port 0: any free port)
Prints "listening on http://HOST:PORT" once it accepts requests.
"""

import argparse
import itertools
import json
import random
import threading
import zlib
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAMILIES = {"train": ["add", "sub"], "ood": ["chain"]}
OPERAND_MAX = 9
NUMBER_MAX = 50
EPISODE_LIMIT = 10_000
MALFORMED = "error : use calc [ a + b ] or calc [ a - b ] or answer [ n ]"
OUT_OF_RANGE = f"error : numbers go from 0 to {NUMBER_MAX}"
PHRASES = ["question : what is plus minus ?", "calc [ ] answer + - =", "is correct wrong", MALFORMED, OUT_OF_RANGE, "first then"]
VOCABULARY = list(dict.fromkeys([str(n) for n in range(NUMBER_MAX + 1)] + " ".join(PHRASES).split()))


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def split_of_question(op, a, b):
    """A held-out fifth for test, another for validation, the rest train (as in server.mjs)."""
    # crc32, not hash(): Python salts str hashes per process, and the split must never change.
    return {0: "test", 1: "validation"}.get(zlib.crc32(f"{op}|{a}|{b}".encode()) % 5, "train")


def make_task(split, family, seed):
    """Deterministic in (split, family, seed): the calculations the optimal agent makes and the answer."""
    rand = random.Random(f"{family}|{seed}")
    while True:
        a, b = rand.randint(1, OPERAND_MAX), rand.randint(1, OPERAND_MAX)
        if family == "chain":
            c = rand.randint(1, min(OPERAND_MAX, a + b))
            return {"prompt": f"question : what is {a} plus {b} minus {c} ?", "steps": [(a, "+", b), (a + b, "-", c)], "answer": a + b - c}
        if family == "sub" and a < b:
            a, b = b, a
        op = "+" if family == "add" else "-"
        if split_of_question(op, a, b) == split:
            word = "plus" if op == "+" else "minus"
            return {"prompt": f"question : what is {a} {word} {b} ?", "steps": [(a, op, b)], "answer": a + b if op == "+" else a - b}


def parse_call(words):
    """The single tool call ending the action: (tool, args), or None."""
    opens = [i for i, w in enumerate(words) if w == "["]
    if len(opens) != 1 or not words or words[-1] != "]" or opens[0] == 0:
        return None
    tool = words[opens[0] - 1]
    return (tool, words[opens[0] + 1 : -1]) if tool in ("calc", "answer") else None


def number(word):
    return int(word) if word is not None and word.isdigit() else None


def step(episode, action):
    call = parse_call(action.split())
    if call is None:
        return {"observation": MALFORMED, "reward": 0, "done": False, "success": False, "error": "malformed action"}
    tool, args = call
    if tool == "answer":
        n = number(args[0]) if len(args) == 1 else None
        if n is None:
            return {"observation": MALFORMED, "reward": 0, "done": False, "success": False, "error": "answer needs one number"}
        success = n == episode["task"]["answer"]
        episode["done"] = True
        return {"observation": f"answer {n} is {'correct' if success else 'wrong'}", "reward": 1 if success else 0, "done": True, "success": success}
    x, op, y = (number(args[0]), args[1], number(args[2])) if len(args) == 3 else (None, None, None)
    if x is None or y is None or op not in ("+", "-"):
        return {"observation": MALFORMED, "reward": 0, "done": False, "success": False, "error": "calc needs a + b or a - b"}
    result = x + y if op == "+" else x - y
    if max(x, y) > NUMBER_MAX or not 0 <= result <= NUMBER_MAX:
        return {"observation": OUT_OF_RANGE, "reward": 0, "done": False, "success": False, "error": "number out of range"}
    episode["results"].append(result)
    return {"observation": f"calc {x} {op} {y} = {result}", "reward": 0, "done": False, "success": False}


def demonstrate(episode, suboptimal, seed):
    """As in server.mjs: the calculations then the answer; sub-optimal: guess at once, or the other operation first."""
    steps, results = episode["task"]["steps"], episode["results"]
    made = len(results)
    if made == len(steps):
        return f"answer [ {results[-1]} ]"
    a, op, b = steps[made]
    if made == 0 and suboptimal:
        if seed % 2 == 0:
            return f"answer [ {a} ]"
        return f"first calc [ {max(a, b)} - {min(a, b)} ]" if op == "+" else f"first calc [ {a} + {b} ]"
    left = a if made == 0 else results[-1]
    if op == "-" and left < b:
        return f"answer [ {left} ]"
    return f"{'first' if made == 0 else 'then'} calc [ {left} {op} {b} ]"


episodes = OrderedDict()
episode_ids = itertools.count(1)
lock = threading.Lock()


def field(body, key, check, what):
    if key not in body or not check(body[key]):
        raise HttpError(400, f"{key}: expected {what}")
    return body[key]


def episode_of(body):
    episode_id = field(body, "episodeId", lambda v: isinstance(v, str), "a string")
    if episode_id not in episodes:
        raise HttpError(404, f"episodeId: unknown episode {json.dumps(episode_id)}")
    return episodes[episode_id]


def is_seed(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def reset(body):
    split = field(body, "split", lambda v: v in ("train", "validation", "test", "ood"), "train, validation, test or ood")
    families = FAMILIES["ood"] if split == "ood" else FAMILIES["train"]
    family = field(body, "family", lambda v: v in families, f"one of {', '.join(families)} for split {split}")
    seed = field(body, "seed", is_seed, "an integer >= 0")
    task = make_task(split, family, seed)
    episode_id = f"e{next(episode_ids)}"
    episodes[episode_id] = {"task": task, "results": [], "done": False}
    if len(episodes) > EPISODE_LIMIT:
        episodes.popitem(last=False)
    return {"episodeId": episode_id, "prompt": task["prompt"], "observation": ""}


def step_route(body):
    episode = episode_of(body)
    if episode["done"]:
        raise HttpError(409, "the episode is over")
    return step(episode, field(body, "action", lambda v: isinstance(v, str), "a string"))


def demonstrate_route(body):
    episode = episode_of(body)
    suboptimal = field(body, "suboptimal", lambda v: isinstance(v, bool), "true or false")
    return {"action": demonstrate(episode, suboptimal, field(body, "seed", is_seed, "an integer >= 0"))}


ROUTES = {
    ("GET", "/info"): lambda body: {"name": "calculator-py", "vocabulary": VOCABULARY, "families": FAMILIES, "demonstrations": True, "validation": True},
    ("POST", "/reset"): reset,
    ("POST", "/step"): step_route,
    ("POST", "/demonstrate"): demonstrate_route,
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses connections

    def handle_any(self, method):
        try:
            route = ROUTES.get((method, self.path.split("?")[0]))
            if route is None:
                raise HttpError(404, f"no route {method} {self.path}")
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                raise HttpError(400, "the request body must be a JSON object") from None
            if not isinstance(body, dict):
                raise HttpError(400, "the request body must be a JSON object")
            with lock:  # episodes are shared by the server's threads
                self.send(200, route(body))
        except HttpError as err:
            self.send(err.status, {"error": str(err)})
        except Exception as err:  # a bug here must still answer, as an HTTP 500
            self.send(500, {"error": repr(err)})

    def send(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def log_message(self, format, *args):
        pass  # quiet, like server.mjs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
