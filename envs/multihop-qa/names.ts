// Invented, pronounceable one-word entity names built from syllables with the seeded RNG
// (e.g. "Velmora", "Orsk"). Capitalised, so they never collide with the lower-case grammar words.
import type { Rng } from "../../core/rng.ts";

const ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "st", "th", "sh"];
const VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o"];
/** Inside a name only soft codas, so syllable joins stay pronounceable ("Vel-mo-ra"). */
const INNER_CODAS = ["", "", "", "l", "r", "n", "m", "s"];
const FINAL_CODAS = ["", "", "n", "r", "l", "s", "k", "m", "sk", "rn", "nd", "th"];

function syllable(rng: Rng, index: number, last: boolean): string {
  const onset = index === 0 && rng.next() < 0.2 ? "" : rng.pick(ONSETS);
  return onset + rng.pick(VOWELS) + rng.pick(last ? FINAL_CODAS : INNER_CODAS);
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** `count` distinct names, none in `reserved` (compared case-insensitively). */
export function generateNames(rng: Rng, count: number, taken: Set<string>, reserved: ReadonlySet<string>): string[] {
  const out: string[] = [];
  let attempts = 0;
  while (out.length < count) {
    if (++attempts > count * 1000 + 10000) throw new Error(`multihop-qa: could not generate ${count} distinct names`);
    const syllables = rng.next() < 0.3 ? 3 : 2;
    let word = "";
    for (let i = 0; i < syllables; i++) word += syllable(rng, i, i === syllables - 1);
    if (word.length < 4 || word.length > 9) continue;
    const name = capitalise(word);
    const lower = name.toLowerCase();
    if (taken.has(lower) || reserved.has(lower)) continue;
    taken.add(lower);
    out.push(name);
  }
  return out;
}
