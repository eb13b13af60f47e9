// Can the reward teach what the policy gets wrong? From a checkpoint (e.g. a warm start bench/train-signal.ts cached
// under /tmp/ws), sampled episodes on TRAINING tasks; at every step the optimal demonstrator is asked what it would
// do in the same state and its step is scored under the policy. Reports, per family, the probability the policy
// gives the optimal step at the first step where a failed episode's tool call leaves it (issue #13).
//   node --import tsx bench/optimal-step-probe.ts '{"family":"paper-search","seed":1,"n":200,"ckpt":"/tmp/ws/<dir>"}'
// Optional: temperature (instead of the job's), show (examples per family), env (environment overrides).
import { Rng } from "../core/rng.ts";
import { DEFAULT_SETTINGS, familyEnvironment, jobFor, type Family } from "./algos/settings.ts";
import { ROWS } from "./algos/rows.ts";
import { setUpRun } from "../learner/run-setup.ts";
import { restoreLearner } from "../learner/checkpoint.ts";
import { generateSteps } from "../policy/decoding.ts";

const arg = JSON.parse(process.argv[2] ?? "{}");
const family: Family = arg.family ?? "paper-search";
const seed: number = arg.seed ?? 1;
const job = jobFor(DEFAULT_SETTINGS, family, ROWS[0], seed, undefined, arg.env ? familyEnvironment(family, arg.env) : undefined);
if (arg.temperature) job.spec.rollout.temperature = arg.temperature;
const { env, tokenizer, learner, policy, config } = await setUpRun(job, () => {});
if (!(await restoreLearner(arg.ckpt, learner, tokenizer, () => {}))) throw new Error("no ckpt");
const spec = job.spec;
const T = spec.rollout.temperature;
const budget = config.contextLength - spec.environment.maxStepTokens;
const rng = new Rng(4242);
const n: number = arg.n ?? 200;
const callOf = (w: string[]) => {
  const i = Math.max(
    w.lastIndexOf("search"),
    w.lastIndexOf("open"),
    w.lastIndexOf("submit"),
    w.lastIndexOf("go"),
    w.lastIndexOf("take"),
    w.lastIndexOf("put"),
    w.lastIndexOf("unlock"),
  );
  return w.slice(i).join(" ");
};
type Rec = { fam: string; t: number; same: boolean; lpDemo: number; lpPol: number; minTokDemo: number; demo: string; pol: string };
const recs: Rec[] = [];
const first: Rec[] = []; // first divergence per failed episode
let succ = 0;
for (let e = 0; e < n; e++) {
  const task = env.sampleTask(rng, "train");
  const ep = await env.start(task);
  const demo = env.demonstrator(task, rng, false);
  let diverged: Rec | null = null;
  for (let t = 0; t < spec.environment.maxSteps; t++) {
    const ctx = tokenizer.encodeContext(ep.context(), budget);
    const [g] = generateSteps(
      policy,
      [ctx],
      { maxStepTokens: spec.environment.maxStepTokens, endsStep: tokenizer.endsStep, temperature: T, greedy: false },
      rng,
    );
    const dw = await demo(ep);
    const dIds = tokenizer.encodeAction(dw, spec.environment.maxStepTokens);
    const { logProbs } = learner.scoreSteps(learner.model, [{ contextIds: ctx, actionIds: dIds }]);
    const lpDemo = logProbs[0].reduce((s, x) => s + x, 0);
    const lpPol = g.logProbs.reduce((s, x) => s + x, 0);
    const pol = tokenizer.actionWords(g.actionIds);
    const rec: Rec = {
      fam: task.family,
      t,
      same: callOf(pol) === callOf(dw),
      lpDemo,
      lpPol,
      minTokDemo: Math.min(...logProbs[0]),
      demo: dw.join(" "),
      pol: pol.join(" "),
    };
    recs.push(rec);
    if (!rec.same && !diverged) diverged = rec;
    const out = await ep.step(pol);
    if (out.done) {
      if (out.success) succ++;
      else if (diverged) first.push(diverged);
      break;
    }
    if (t === spec.environment.maxSteps - 1 && diverged) first.push(diverged);
  }
}
console.log(`success ${succ}/${n}`);
const q = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.floor(p * (a.length - 1))];
const byFam = new Map<string, Rec[]>();
for (const r of first) byFam.set(r.fam, [...(byFam.get(r.fam) ?? []), r]);
for (const [f, rs] of byFam) {
  const p = rs.map((r) => Math.exp(r.lpDemo));
  console.log(
    `${f}: ${rs.length} failed episodes; P(optimal action at first divergence) at T=${T}: median ${q(p, 0.5).toExponential(2)}, p75 ${q(p, 0.75).toExponential(2)}, >0.05: ${p.filter((x) => x > 0.05).length}, >0.2: ${p.filter((x) => x > 0.2).length}`,
  );
  const mins = rs.map((r) => Math.exp(r.minTokDemo));
  console.log(`   min per-token P(optimal token): median ${q(mins, 0.5).toExponential(2)}`);
  for (const r of rs.slice(0, arg.show ?? 3)) console.log(`   t${r.t} P=${Math.exp(r.lpDemo).toExponential(1)} demo: ${r.demo}\n        pol:  ${r.pol}`);
}
