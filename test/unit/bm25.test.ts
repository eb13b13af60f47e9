import assert from "node:assert/strict";
import { test } from "node:test";
import { Bm25Index } from "../../envs/search/bm25.ts";

// A tiny corpus: N = 3, |D| = 3, 2, 4, avgdl = 3.
const DOCS = [
  ["a", "b", "a"],
  ["b", "c"],
  ["c", "c", "c", "d"],
];

/** BM25 written out term by term for the tiny corpus, independently of the index. */
function expected(query: string[], doc: number, k1 = 1.2, b = 0.75): number {
  const N = DOCS.length;
  const avgdl = DOCS.reduce((s, d) => s + d.length, 0) / N;
  let score = 0;
  for (const q of new Set(query)) {
    const n = DOCS.filter((d) => d.includes(q)).length;
    const tf = DOCS[doc].filter((w) => w === q).length;
    if (tf === 0) continue;
    const idf = Math.log(1 + (N - n + 0.5) / (n + 0.5));
    score += (idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * DOCS[doc].length) / avgdl));
  }
  return score;
}

const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-9, msg ?? `${a} != ${b}`);

test("bm25: scores match the formula, worked by hand for one document", () => {
  const index = new Bm25Index(DOCS);
  const hits = index.search(["a", "c"], 3);
  assert.deepEqual(
    hits.map((h) => h.doc),
    [0, 2, 1],
  );
  for (const h of hits) close(h.score, expected(["a", "c"], h.doc));
  // By hand: idf(c) = ln(1 + 1.5 / 2.5) = ln 1.6; doc 1 has tf 1, |D| 2: 2.2 / (1 + 1.2 · (0.25 + 0.75 · 2/3)) = 2.2 / 1.9.
  close(hits[2].score, (Math.log(1.6) * 2.2) / 1.9);
  // doc 0: idf(a) = ln(1 + 2.5 / 1.5), tf 2, |D| = avgdl: 4.4 / 3.2.
  close(hits[0].score, (Math.log(1 + 2.5 / 1.5) * 4.4) / 3.2);
  close(hits[0].score, 1.3486402228911236);
});

test("bm25: k1 and b options enter the formula", () => {
  const index = new Bm25Index(DOCS, { k1: 2, b: 0.3 });
  for (const h of index.search(["c", "d", "b"], 3)) close(h.score, expected(["c", "d", "b"], h.doc, 2, 0.3));
  assert.throws(() => new Bm25Index(DOCS, { b: 1.5 }), /b must be/);
  assert.throws(() => new Bm25Index(DOCS, { k1: -1 }), /k1 must be/);
});

test("bm25: k limits the hits; unmatched documents and unknown words score nothing", () => {
  const index = new Bm25Index(DOCS);
  assert.deepEqual(
    index.search(["a", "c"], 2).map((h) => h.doc),
    [0, 2],
  );
  assert.deepEqual(index.search(["c"], 0), []);
  assert.deepEqual(
    index.search(["a"], 10).map((h) => h.doc),
    [0],
    "documents without a query word are excluded",
  );
  assert.deepEqual(index.search(["zzz"], 5), []);
  assert.deepEqual(index.search([], 5), []);
});

test("bm25: a repeated query word counts once", () => {
  const index = new Bm25Index(DOCS);
  assert.deepEqual(index.search(["c", "c", "c"], 3), index.search(["c"], 3));
});

test("bm25: ties go to the lower document index, deterministically", () => {
  const docs = [["x", "y"], ["z"], ["y", "x"], ["x", "y"]];
  const index = new Bm25Index(docs);
  const hits = index.search(["x"], 3);
  assert.deepEqual(
    hits.map((h) => h.doc),
    [0, 2, 3],
  );
  assert.equal(hits[0].score, hits[1].score);
  assert.deepEqual(new Bm25Index(docs).search(["y", "x"], 4), new Bm25Index(docs).search(["x", "y"], 4));
});

test("bm25: without length normalisation (b = 0) equal term frequencies tie regardless of length", () => {
  const index = new Bm25Index([["q", "r", "r", "r"], ["q"]], { b: 0 });
  const [first, second] = index.search(["q"], 2);
  assert.equal(first.score, second.score);
  assert.equal(first.doc, 0);
  const normalised = new Bm25Index([["q", "r", "r", "r"], ["q"]]).search(["q"], 2);
  assert.equal(normalised[0].doc, 1, "with b > 0 the shorter document wins");
});
