// The curves: one uPlot chart per quantity, every ticked run overlaid, x = environment steps.
import uPlot from "/dashboard/vendor/uplot/uPlot.esm.js";
import { el, PALETTE } from "./dom.js";

/** [envSteps, y] for every curve point where `key` was measured. */
function column(run, key) {
  return run.curve.filter((p) => p[key] !== null && p[key] !== undefined).map((p) => [p.envSteps, p[key]]);
}

function lastEnvSteps(run) {
  return run.curve.length > 0 ? run.curve[run.curve.length - 1].envSteps : (run.meta.envSteps ?? 0);
}

/** Each chart: its title and, per run, the lines it draws ({ label, points, dash? }). */
export const CHARTS = [
  {
    id: "success",
    title: "Success rate (train sampled, test and OOD greedy)",
    lines: (run) => [
      { label: "train", points: column(run, "trainSuccess"), dash: [4, 3] },
      { label: "test", points: column(run, "testSuccess") },
      // OOD families are measured before RL and at the end only (summary.json): two points each.
      ...Object.keys(run.ood).map((family) => ({
        label: `OOD ${family}`,
        points: [...(run.oodInitial[family] !== undefined ? [[0, run.oodInitial[family]]] : []), [lastEnvSteps(run), run.ood[family]]],
        dash: [1, 3],
      })),
    ],
  },
  { id: "meanReturn", title: "Mean episode return", lines: (run) => [{ label: "return", points: column(run, "meanReturn") }] },
  {
    id: "meanEpisodeLength",
    title: "Mean episode length (steps)",
    lines: (run) => [{ label: "steps per episode", points: column(run, "meanEpisodeLength") }],
  },
  { id: "policyLoss", title: "Policy loss", lines: (run) => [{ label: "policy loss", points: column(run, "policyLoss") }] },
  { id: "valueLoss", title: "Value loss", lines: (run) => [{ label: "value loss", points: column(run, "valueLoss") }] },
  { id: "entropy", title: "Entropy", lines: (run) => [{ label: "entropy", points: column(run, "entropy") }] },
  { id: "clipFraction", title: "Clip fraction", lines: (run) => [{ label: "clip fraction", points: column(run, "clipFraction") }] },
  { id: "approxKl", title: "Approx. KL(old ‖ new)", lines: (run) => [{ label: "approx KL", points: column(run, "approxKl") }] },
  {
    id: "explainedVariance",
    title: "Critic explained variance",
    lines: (run) => [{ label: "explained variance", points: column(run, "explainedVariance") }],
  },
  { id: "gradNorm", title: "Gradient norm (before clipping)", lines: (run) => [{ label: "grad norm", points: column(run, "gradNorm") }] },
  { id: "learningRate", title: "Learning rate", lines: (run) => [{ label: "learning rate", points: column(run, "learningRate") }] },
  { id: "throughput", title: "Throughput (env steps / s)", lines: (run) => [{ label: "env steps/s", points: throughput(run) }] },
  {
    id: "samplesPerSecond",
    title: "Learner throughput (samples / s)",
    lines: (run) => [{ label: "samples/s", points: column(run, "samplesPerSecond") }],
  },
  // Distributed runs: how far behind the policy that sampled a batch was, and what staleness cost.
  { id: "policyLag", title: "Policy lag (versions, batch mean)", lines: (run) => [{ label: "policy lag", points: column(run, "policyLag") }] },
  { id: "staleDrops", title: "Stale samples dropped (cumulative)", lines: (run) => [{ label: "stale drops", points: column(run, "staleDrops") }] },
];

/** Env steps per second of each update: its env steps over its wall seconds (update 0 has none). */
function throughput(run) {
  const out = [];
  for (let i = 1; i < run.curve.length; i++) {
    const p = run.curve[i];
    const steps = p.envSteps - run.curve[i - 1].envSteps;
    if (p.seconds > 0 && steps > 0) out.push([p.envSteps, steps / p.seconds]);
  }
  return out;
}

/** Lines of several runs on one x axis: the union of their x values, null where a line has no point. */
function align(lines) {
  const xs = [...new Set(lines.flatMap((l) => l.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = lines.map((l) => {
    const y = new Array(xs.length).fill(null);
    for (const [x, v] of l.points) y[index.get(x)] = v;
    return y;
  });
  return [xs, ...ys];
}

/**
 * Draws every chart for `runs` into `container` (replacing what was there). `onPick(run, envSteps)` is called
 * when a point is clicked. Returns the uPlot instances (also kept on window.steppoDashboard for the console).
 */
export function renderCharts(container, runs, onPick) {
  for (const c of container.querySelectorAll(".chart")) c._uplot?.destroy();
  container.replaceChildren();
  const charts = [];
  const width = Math.max(420, Math.min(640, container.clientWidth / 2 - 16));
  for (const spec of CHARTS) {
    const lines = runs.flatMap((run, r) =>
      spec.lines(run).map((line, j) => ({
        ...line,
        run,
        label: runs.length > 1 ? `${run.name}: ${line.label}` : line.label,
        color: PALETTE[(runs.length > 1 ? r * 3 + j : j) % PALETTE.length],
      })),
    );
    const drawn = lines.filter((l) => l.points.length > 0);
    const data = align(drawn);
    const figure = el("figure", { class: "chart", "data-metric": spec.id, "data-points": data[0].length }, el("figcaption", {}, spec.title));
    container.append(figure);
    if (drawn.length === 0) {
      figure.append(el("p", { class: "muted" }, "nothing measured yet"));
      continue;
    }
    const u = new uPlot(
      {
        width,
        height: 220,
        scales: { x: { time: false } },
        axes: [{ label: "env steps" }, {}],
        cursor: { points: { size: 8 } },
        series: [
          { label: "env steps" },
          ...drawn.map((l) => ({ label: l.label, stroke: l.color, width: 2, dash: l.dash, spanGaps: true, points: { show: true, size: 5 } })),
        ],
      },
      data,
      figure,
    );
    figure._uplot = u;
    u.over.addEventListener("click", () => {
      const idx = u.cursor.idx;
      if (idx === null || idx === undefined) return;
      const x = data[0][idx];
      // The run whose line has a point at that x: the inspected run first (onPick decides), any run otherwise.
      const candidates = drawn.filter((_l, i) => data[i + 1][idx] !== null).map((l) => l.run);
      onPick(candidates, x);
    });
    charts.push(u);
  }
  return charts;
}
