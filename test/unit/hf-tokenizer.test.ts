// The Hugging Face tokenizer (policy/hf/hf-tokenizer.ts, through tokenizers.js) on a byte-level BPE the
// test builds itself (test/support/tiny-tokenizer.ts): merges applied in rank order, added special tokens
// as single ids, any text back from its ids exactly, and errors naming the file.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { HfTokenizer } from "../../policy/hf/hf-tokenizer.ts";
import { bytesToUnicode, TINY_ADDED, tinyTokenizerConfig, tinyTokenizerJson, tinyVocabulary } from "../support/tiny-tokenizer.ts";

const root = mkdtempSync(join(tmpdir(), "steppo-hf-tokenizer-"));
after(() => rmSync(root, { recursive: true, force: true }));

async function tinyTokenizer(): Promise<HfTokenizer> {
  const dir = mkdtempSync(join(root, "t-"));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson()));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(tinyTokenizerConfig()));
  return HfTokenizer.fromDir(dir);
}

const vocab = tinyVocabulary();
const id = (token: string) => {
  const i = vocab.get(token);
  if (i === undefined) throw new Error(`test vocabulary has no ${token}`);
  return i;
};

describe("a byte-level BPE tokenizer from tokenizer.json", () => {
  it("applies the merges in rank order, byte tokens for the rest", async () => {
    const tok = await tinyTokenizer();
    // "hello": h+e (rank 0) before e+l (rank 8) → hello; " world": Ġw, or, ld, then Ġw+or; no Ġwor+ld merge.
    assert.deepEqual([...tok.encode("hello world")], [id("hello"), id("Ġwor"), id("ld")]);
    // "help": h+e, he+l, then p alone. "shell": no s+h merge, so s stays alone and h+e, he+l, hel+l follow.
    assert.deepEqual([...tok.encode("help")], [id("hel"), id("p")]);
    assert.deepEqual([...tok.encode("shell")], [id("s"), id("hell")]);
    assert.deepEqual([...tok.encode("search [")], [id("search"), id("Ġ"), id("[")]);
    // A non-ASCII character is its UTF-8 bytes' tokens: é = C3 A9.
    const byteToken = bytesToUnicode();
    assert.deepEqual([...tok.encode("é")], [id(byteToken[0xc3]), id(byteToken[0xa9])]);
  });

  it("encodes added special tokens as single ids, never split by BPE", async () => {
    const tok = await tinyTokenizer();
    const [eot, start, end] = TINY_ADDED.map((_, i) => vocab.size + i);
    assert.deepEqual([...tok.encode("<|im_start|>hello<|im_end|>")], [start, id("hello"), end]);
    assert.equal(tok.size, vocab.size + TINY_ADDED.length);
    assert.equal(tok.eosId, end);
    assert.equal(tok.padId, eot);
    assert.equal(tok.bosId, undefined);
    assert.equal(tok.tokenId("<|im_end|>"), end);
    assert.equal(tok.token(id("search")), "search");
    assert.equal(tok.decode([start, id("hello"), end]), "<|im_start|>hello<|im_end|>");
    assert.equal(tok.decode([start, id("hello"), end], { skipSpecialTokens: true }), "hello");
  });

  it("gives back any text from its ids exactly (spacing, newlines, punctuation, emoji, CJK)", async () => {
    const tok = await tinyTokenizer();
    const texts = [
      "",
      "search [ Krakdeto ] .",
      "the director of Koek is Krakdeto . search [ Krakdeto ]",
      "  two  spaces\tand a tab\nand a newline\n\n",
      "don't stop , it 's fine !",
      "naïve café — 東京 🚀 ok?",
      "<|im_start|>user\nwho ?<|im_end|>\n<|im_start|>assistant\n",
    ];
    for (const text of texts) {
      const ids = tok.encode(text);
      for (const i of ids) assert.ok(i >= 0 && i < tok.size, `id ${i} in range`);
      assert.equal(tok.decode(ids), text, JSON.stringify(text));
    }
    // Random byte soup of printable and non-printable characters round-trips too.
    let seed = 7;
    for (let n = 0; n < 50; n++) {
      const chars = Array.from({ length: 1 + (n % 17) }, () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const pool = [0x20, 0x0a, 0x61 + (seed % 26), 0x2c, 0xe9, 0x4e2d, 0x1f600];
        return String.fromCodePoint(pool[seed % pool.length]);
      });
      const text = chars.join("");
      assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
    }
  });

  it("refuses ids outside the vocabulary and a tokenizer.json it cannot build, naming the file", async () => {
    const tok = await tinyTokenizer();
    assert.throws(() => tok.decode([tok.size]), /id \d+ is not in \[0, \d+\]/);
    assert.throws(() => tok.decode([-1]), /id -1/);
    const dir = mkdtempSync(join(root, "bad-"));
    await assert.rejects(() => HfTokenizer.fromDir(dir), /no tokenizer\.json/);
    writeFileSync(join(dir, "tokenizer.json"), "{ truncated");
    await assert.rejects(() => HfTokenizer.fromDir(dir), /tokenizer\.json: not JSON/);
    const { model: _model, ...noModel } = tinyTokenizerJson();
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(noModel));
    await assert.rejects(
      () => HfTokenizer.fromDir(dir),
      (err: Error) => err.message.includes(join(dir, "tokenizer.json")) && /must contain a "model"/.test(err.message),
    );
  });
});
