// Okapi BM25 over pre-tokenised documents (words in, doc indices out). Shared by the retrieval
// environments (multihop-qa, paper-search).
//
//   score(D, Q) = Σ_{q ∈ distinct(Q)} idf(q) · tf(q, D) · (k1 + 1) / (tf(q, D) + k1 · (1 − b + b · |D| / avgdl))
//   idf(q)      = ln(1 + (N − n(q) + 0.5) / (n(q) + 0.5))
//
// N = number of documents, n(q) = documents containing q, |D| = words in D, avgdl = mean |D|. The idf is
// the non-negative (Lucene) form, so a term that occurs in most documents still counts a little instead
// of pushing a score below zero. Each distinct query word counts once. Words are matched exactly (the
// caller lower-cases or drops stop-words if it wants to).

export interface Bm25Options {
  /** Term-frequency saturation (default 1.2). */
  k1?: number;
  /** Length normalisation, 0 (none) … 1 (full) (default 0.75). */
  b?: number;
}

export interface Bm25Hit {
  doc: number;
  score: number;
}

export class Bm25Index {
  readonly k1: number;
  readonly b: number;
  readonly size: number;
  private readonly postings = new Map<string, { doc: number; tf: number }[]>();
  private readonly docLength: number[];
  private readonly avgdl: number;

  constructor(docs: string[][], opts: Bm25Options = {}) {
    this.k1 = opts.k1 ?? 1.2;
    this.b = opts.b ?? 0.75;
    if (!Number.isFinite(this.k1) || this.k1 < 0) throw new Error(`Bm25Index: k1 must be a finite number >= 0, got ${this.k1}`);
    if (!Number.isFinite(this.b) || this.b < 0 || this.b > 1) throw new Error(`Bm25Index: b must be in [0, 1], got ${this.b}`);
    this.size = docs.length;
    this.docLength = docs.map((d) => d.length);
    const total = this.docLength.reduce((s, n) => s + n, 0);
    this.avgdl = docs.length > 0 ? total / docs.length : 0;
    docs.forEach((words, doc) => {
      const tf = new Map<string, number>();
      for (const w of words) tf.set(w, (tf.get(w) ?? 0) + 1);
      for (const [w, n] of tf) {
        let list = this.postings.get(w);
        if (!list) {
          list = [];
          this.postings.set(w, list);
        }
        list.push({ doc, tf: n });
      }
    });
  }

  /** Documents containing `word`. */
  docFreq(word: string): number {
    return this.postings.get(word)?.length ?? 0;
  }

  idf(word: string): number {
    const n = this.docFreq(word);
    return Math.log(1 + (this.size - n + 0.5) / (n + 0.5));
  }

  /** The `k` best documents for `query`, best first; ties go to the lower doc index; zero scores are left out. */
  search(query: string[], k: number): Bm25Hit[] {
    if (!(k >= 1)) return [];
    const scores = new Map<number, number>();
    for (const q of new Set(query)) {
      const list = this.postings.get(q);
      if (!list) continue;
      const idf = this.idf(q);
      for (const { doc, tf } of list) {
        const norm = this.avgdl > 0 ? this.docLength[doc] / this.avgdl : 0;
        const s = (idf * tf * (this.k1 + 1)) / (tf + this.k1 * (1 - this.b + this.b * norm));
        scores.set(doc, (scores.get(doc) ?? 0) + s);
      }
    }
    const hits: Bm25Hit[] = [];
    for (const [doc, score] of scores) if (score > 0) hits.push({ doc, score });
    hits.sort((x, y) => y.score - x.score || x.doc - y.doc);
    return hits.slice(0, Math.floor(k));
  }
}
