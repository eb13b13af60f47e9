// The environment contract (test/support/environment-contract.ts) for the in-process environments; the
// http environment runs it against its reference server in test/integration/http-env-contract.test.ts.
import { signature } from "../../envs/textworld/world.ts";
import type { TextworldEpisode } from "../../envs/textworld/episode.ts";
import { createMultihopQa } from "../../envs/multihop-qa/index.ts";
import { createPaperSearch, PAPER_SEARCH_DEFAULTS } from "../../envs/paper-search/index.ts";
import { createTextworld } from "../../envs/textworld/index.ts";
import type { Task } from "../../envs/environment.ts";
import { type EnvironmentContractOptions, environmentContract } from "../support/environment-contract.ts";

const goal =
  (head: string) =>
  (task: { prompt: string[] }): string[] => [head, ":", ...task.prompt];

const MULTIHOP_QA: EnvironmentContractOptions = {
  stepBudget: 5,
  maxContextWords: 96,
  boundedConfigs: [
    { maxContextWords: 40, maxPassages: 4, topK: 3 },
    { maxPassages: 1, topK: 1 },
  ],
  goal: goal("question"),
  tools: ["search", "answer"],
  actionWords: [8, 25],
  minSuccess: { train: 0.99, test: 1, ood: 1 },
  suboptimalMargin: 0.5,
  suboptimalEnds: true,
  malformedActions: ["i think the answer is obvious", "search [ x", "lookup [ x ]", "search [ ]", "search [ a ] answer [ b ]"].map((a) => a.split(" ")),
  configErrors: [
    [{ peple: 3 }, /spec\.environment\.config\.peple: unknown key/],
    [{ people: "many" }, /spec\.environment\.config\.people: expected an integer between 2 and 500, got "many"/],
    [{ topK: 1.5 }, /spec\.environment\.config\.topK: expected an integer/],
    [{ testFraction: 1 }, /spec\.environment\.config\.testFraction: expected a number strictly between 0 and 1/],
    [{ films: 1 }, /spec\.environment\.config\.films/],
    [{ maxContextWords: 10 }, /spec\.environment\.config\.maxContextWords/],
  ],
};

environmentContract("multihop-qa", createMultihopQa, MULTIHOP_QA);

/** The seed in a fresh-facts or fresh-corpus task id (`facts<seed>:…`, `corpus<seed>:…`): what train and test never share. */
const seedKey = (prefix: string) => async (_env: unknown, task: Task) => {
  const m = new RegExp(`^${prefix}(\\d+):`).exec(task.id);
  if (!m) throw new Error(`${task.id}: no ${prefix} seed`);
  return m[1];
};

// freshFacts: a knowledge base per task; no test knowledge base is a training one (the same questions recur over other facts).
environmentContract("multihop-qa freshFacts", (config, seed) => createMultihopQa({ freshFacts: 1, ...config }, seed), {
  ...MULTIHOP_QA,
  splitKey: seedKey("facts"),
  minDistinctTrainTasks: 250,
  configErrors: [...MULTIHOP_QA.configErrors, [{ freshFacts: 2 }, /spec\.environment\.config\.freshFacts: expected an integer between 0 and 1, got 2/]],
});

// longChains + verboseReasoning (the benchmark's long-horizon setting): 6-step in-domain questions whose
// demonstrated steps restate the question and the fact read before each call; sub-optimal plans take up to 7.
environmentContract(
  "multihop-qa longChains verboseReasoning",
  (config, seed) => createMultihopQa({ freshFacts: 1, longChains: 1, verboseReasoning: 1, ...config }, seed),
  {
    ...MULTIHOP_QA,
    stepBudget: 7,
    actionWords: [21, 41],
    splitKey: seedKey("facts"),
    minDistinctTrainTasks: 250,
    configErrors: [
      ...MULTIHOP_QA.configErrors,
      [{ longChains: 2 }, /spec\.environment\.config\.longChains: expected an integer between 0 and 1, got 2/],
      [{ verboseReasoning: "yes" }, /spec\.environment\.config\.verboseReasoning: expected an integer between 0 and 1, got "yes"/],
      [{ maxContextWords: 30 }, /spec\.environment\.config\.maxContextWords: expected an integer of at least 31/],
    ],
  },
);

const PAPER_SEARCH: EnvironmentContractOptions = {
  stepBudget: PAPER_SEARCH_DEFAULTS.stepBudget,
  maxContextWords: 96,
  boundedConfigs: [{ maxContextWords: 74 }],
  goal: goal("goal"),
  tools: ["search", "open", "submit"],
  actionWords: [6, 20],
  minSuccess: { train: 0.99, test: 1, ood: 0.95 },
  suboptimalMargin: 0.3,
  malformedActions: [
    ["hello", "there"],
    ["open", "[", "p9999", "]"],
    ["submit", "[", "nonsense", "]"],
    ["open", "[", "p1", "p2", "]"],
    ["search", "[", "a", "]", "search", "[", "b", "]"],
    ["frobnicate", "[", "x", "]"],
    ["search", "[", "x"],
    ["search", "[", "]"],
  ],
  configErrors: [
    [{ paperz: 10 }, /spec\.environment\.config\.paperz: unknown key/],
    [{ papers: "many" }, /spec\.environment\.config\.papers: expected an integer/],
    [{ topK: 0 }, /spec\.environment\.config\.topK/],
    [{ topK: 2 }, /spec\.environment\.config\.topK: expected at least maxPapersPerAuthor/],
    [{ testFraction: 1 }, /spec\.environment\.config\.testFraction/],
    [{ authors: 5 }, /spec\.environment\.config\.authors/],
    [{ maxContextWords: 70 }, /spec\.environment\.config\.maxContextWords/],
  ],
};

environmentContract("paper-search", createPaperSearch, PAPER_SEARCH);

// freshCorpus: a corpus per task; no test corpus is a training one (the same questions recur over other corpora).
environmentContract("paper-search freshCorpus", (config, seed) => createPaperSearch({ freshCorpus: 1, ...config }, seed), {
  ...PAPER_SEARCH,
  splitKey: seedKey("corpus"),
  minDistinctTrainTasks: 250,
  configErrors: [
    ...PAPER_SEARCH.configErrors,
    [{ freshCorpus: 2 }, /spec\.environment\.config\.freshCorpus: expected an integer between 0 and 1, got 2/],
    [{ freshCorpus: true }, /spec\.environment\.config\.freshCorpus: expected an integer between 0 and 1, got true/],
  ],
});

const TEXTWORLD: EnvironmentContractOptions = {
  stepBudget: 8,
  maxContextWords: 96,
  boundedConfigs: [{ maxContextWords: 64 }],
  goal: goal("goal"),
  tools: ["go", "take", "open", "unlock", "put"],
  actionWords: [6, 20],
  minSuccess: { train: 0.99, test: 0.99, ood: 0.95 },
  suboptimalMargin: 0.1,
  // A world is the task: no test world may be a train world, whatever its first room looks like.
  minDistinctTrainTasks: 250,
  splitKey: async (env, task) => signature(((await env.start(task)) as TextworldEpisode).world),
  malformedActions: [
    ["hello"],
    ["go", "[", "up", "]"],
    ["go", "[", "north", "east", "]"],
    ["take", "[", "unicorn", "]"],
    ["take", "[", "gem", "coin", "]"],
    ["dance", "[", "now", "]"],
    ["take", "[", "key", "]", "take", "[", "key", "]"],
  ],
  configErrors: [
    [{ roomz: 3 }, /spec\.environment\.config\.roomz: unknown key/],
    [{ rooms: 2.5 }, /spec\.environment\.config\.rooms: expected an integer/],
    [{ rooms: "4" }, /spec\.environment\.config\.rooms/],
    [{ rooms: 8, oodRooms: 7 }, /spec\.environment\.config\.oodRooms/],
    [{ lockedProb: 2 }, /spec\.environment\.config\.lockedProb/],
    [{ maxContextWords: 10 }, /spec\.environment\.config\.maxContextWords/],
    [{ stepBudget: 0 }, /spec\.environment\.config\.stepBudget/],
  ],
};

environmentContract("textworld", createTextworld, TEXTWORLD);

// heldOutGoals: train and test split by the goal, so no test goal (a task's answer) is a training goal.
environmentContract("textworld heldOutGoals", (config, seed) => createTextworld({ heldOutGoals: 1, ...config }, seed), {
  ...TEXTWORLD,
  minDistinctTrainTasks: 200,
  splitKey: async (_env, task) => task.answer,
  configErrors: [...TEXTWORLD.configErrors, [{ heldOutGoals: 0.5 }, /spec\.environment\.config\.heldOutGoals: expected an integer between 0 and 1, got 0\.5/]],
});

// stepCounter (opt-in; no benchmark sets it): the room description shows the steps taken; the contract holds as without.
environmentContract("textworld stepCounter", (config, seed) => createTextworld({ heldOutGoals: 1, stepCounter: 1, ...config }, seed), {
  ...TEXTWORLD,
  minDistinctTrainTasks: 200,
  splitKey: async (_env, task) => task.answer,
  configErrors: [...TEXTWORLD.configErrors, [{ stepCounter: 2 }, /spec\.environment\.config\.stepCounter: expected an integer between 0 and 1, got 2/]],
});
