// The dashboard page: polls /api/runs (the server re-reads the run files), draws the curves of the ticked
// runs, lists each run's problems, and opens an update's episodes from a clicked point or curve-table row.
import { renderCharts } from "./charts.js";
import { el, fmt, PALETTE } from "./dom.js";
import { filterEpisodes, renderEpisode, renderEpisodeList } from "./inspector.js";

const POLL_MS = 3000;
const $ = (id) => document.getElementById(id);

const state = {
  runs: [],
  /** Run ids whose curves are drawn. */
  ticked: new Set(),
  inspectRun: undefined,
  inspectUpdate: undefined,
  episodes: undefined,
  selectedEpisode: 0,
  drawnKey: "",
  charts: [],
};

/** Never a blank page: any failure of the page itself is shown as a message. */
function fatal(message) {
  const box = $("fatal");
  box.hidden = false;
  box.textContent = message;
}
window.addEventListener("error", (e) => fatal(`the dashboard page failed: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => fatal(`the dashboard page failed: ${e.reason?.message ?? e.reason}`));

async function getJson(url) {
  const res = await fetch(url, { cache: "no-store" });
  let body;
  try {
    body = await res.json();
  } catch {
    throw new Error(`${url} answered ${res.status} with no JSON`);
  }
  if (!res.ok) throw new Error(body.error ?? `${url} answered ${res.status}`);
  return body;
}

async function poll() {
  try {
    const { runs } = await getJson("/api/runs");
    $("fatal").hidden = true;
    state.runs = runs;
    if (state.ticked.size === 0) for (const r of runs.filter((x) => x.curve.length > 0).slice(0, 4)) state.ticked.add(r.id);
    if (!runs.some((r) => r.id === state.inspectRun)) state.inspectRun = (runs.find((r) => r.episodeUpdates.length > 0) ?? runs[0])?.id;
    render();
    const live = runs.some((r) => r.state === "running" || r.state === "empty");
    $("status").textContent = `${runs.length} run(s)${live ? ", live: refreshed every 3 s" : ""} · ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    fatal(`cannot read the runs from the dashboard server: ${err.message}`);
  }
}

function render() {
  renderRuns();
  const drawn = state.runs.filter((r) => state.ticked.has(r.id));
  // Redraw the charts only when what they show changed (a poll of a finished run changes nothing).
  const key = JSON.stringify(drawn.map((r) => [r.id, r.curve, r.ood]));
  if (key !== state.drawnKey) {
    state.drawnKey = key;
    state.charts = renderCharts($("charts"), drawn, pickPoint);
    window.steppoDashboard = { charts: state.charts, state };
  }
  renderInspectorControls();
  renderCurveTable();
}

function renderRuns() {
  const box = $("runs");
  if (state.runs.length === 0) {
    box.replaceChildren(el("p", { class: "problem" }, "no runs given: start it as `steppo ui runs/<job>`"));
    return;
  }
  box.replaceChildren(
    ...state.runs.map((run, i) => {
      const final = run.final.test !== undefined ? `test ${fmt(run.final.test, 2)}` : "";
      const ood = Object.entries(run.ood).map(([k, v]) => `${k} ${fmt(v, 2)}`);
      const meta = ["estimator", "ratio", "clip", "updates", "envSteps"].filter((k) => run.meta[k] !== undefined).map((k) => `${k} ${run.meta[k]}`);
      return el(
        "div",
        { class: "run", "data-run": run.id, "data-state": run.state },
        el(
          "div",
          { class: "run-head" },
          el("input", {
            type: "checkbox",
            checked: state.ticked.has(run.id),
            disabled: run.curve.length === 0,
            onchange: (e) => {
              if (e.target.checked) state.ticked.add(run.id);
              else state.ticked.delete(run.id);
              render();
            },
          }),
          el("span", { class: "swatch", style: { background: PALETTE[(i * 3) % PALETTE.length] } }),
          el("strong", {}, run.name),
          el("span", { class: `badge ${run.state}` }, run.state),
          el("span", { class: "muted" }, `${run.curve.length} curve points · ${run.source}`),
        ),
        meta.length > 0 || final ? el("div", { class: "muted" }, [...meta, final, ...ood.map((o) => `OOD ${o}`)].filter(Boolean).join(" · ")) : null,
        ...run.problems.map((p) => el("div", { class: "problem" }, p)),
        ...run.notes.map((n) => el("div", { class: "note" }, n)),
      );
    }),
  );
}

function inspectedRun() {
  return state.runs.find((r) => r.id === state.inspectRun);
}

function renderInspectorControls() {
  const runSelect = $("inspect-run");
  runSelect.replaceChildren(...state.runs.map((r) => el("option", { value: r.id, selected: r.id === state.inspectRun }, r.name)));
  const run = inspectedRun();
  const updates = run ? run.episodeUpdates : [];
  $("inspect-update").replaceChildren(
    el("option", { value: "" }, updates.length > 0 ? "pick an update" : "no episode samples"),
    ...updates.map((u) => el("option", { value: u, selected: u === state.inspectUpdate }, `update ${u}`)),
  );
  if (state.inspectUpdate === undefined) {
    const why = !run ? "" : run.kind === "bench" ? "bench results keep no episodes" : updates.length === 0 ? "this run has no episode samples (yet)" : "";
    $("episodes-message").textContent = why || "click a point on a curve, or pick an update";
  }
}

function renderCurveTable() {
  const run = inspectedRun();
  // The columns curve.csv has (learner/report.ts writes them), in its order.
  const cols = run && run.curve.length > 0 ? Object.keys(run.curve[0]) : ["update", "envSteps"];
  const table = $("curve-table");
  table.tHead.replaceChildren(
    el(
      "tr",
      {},
      cols.map((c) => el("th", {}, c)),
    ),
  );
  table.tBodies[0].replaceChildren(
    ...(run?.curve ?? []).map((p) =>
      el(
        "tr",
        { "data-update": p.update, onclick: () => openUpdate(run.id, p.update) },
        cols.map((c) => el("td", { class: "num" }, fmt(p[c]))),
      ),
    ),
  );
}

/** A clicked chart point: the inspected run's update at that x if it has one, else the first run's that does. */
function pickPoint(candidates, envSteps) {
  const run = candidates.find((r) => r.id === state.inspectRun) ?? candidates.find((r) => r.kind === "run") ?? candidates[0];
  if (!run) return;
  const point = run.curve.find((p) => p.envSteps === envSteps) ?? run.curve.filter((p) => p.envSteps <= envSteps).at(-1);
  if (point) openUpdate(run.id, point.update);
}

async function openUpdate(runId, update) {
  state.inspectRun = runId;
  state.inspectUpdate = update;
  state.episodes = undefined;
  state.selectedEpisode = 0;
  renderInspectorControls();
  $("inspector").scrollIntoView({ behavior: "smooth", block: "start" });
  const message = $("episodes-message");
  const run = inspectedRun();
  if (update === 0) {
    showEpisodes(undefined, "update 0 is the policy before training: it trained on no episodes");
    return;
  }
  if (run?.kind === "bench") {
    showEpisodes(undefined, `${run.name} is a bench result: it keeps no episodes`);
    return;
  }
  message.textContent = `loading the episodes of update ${update}…`;
  try {
    const file = await getJson(`/api/runs/${encodeURIComponent(runId)}/episodes/${update}`);
    if (!Array.isArray(file.episodes)) throw new Error(`the episode file of update ${update} has no episodes list`);
    state.episodes = file;
    const families = [...new Set(file.episodes.map((e) => e.family))];
    $("filter-family").replaceChildren(el("option", { value: "all" }, "all"), ...families.map((f) => el("option", { value: f }, f)));
    showEpisodes(
      file,
      `update ${update}: ${file.episodes.length} of the batch's ${file.batch.episodes} episodes sampled (${file.batch.successes} of the batch succeeded)`,
    );
  } catch (err) {
    showEpisodes(undefined, `cannot show the episodes of update ${update}: ${err.message}`, true);
  }
}

function showEpisodes(file, message, isProblem = false) {
  const box = $("episodes-message");
  box.textContent = message;
  box.className = isProblem ? "problem" : "muted";
  if (!file) {
    $("episode-list").replaceChildren();
    $("episode-detail").replaceChildren();
    return;
  }
  const entries = filterEpisodes(file, $("filter-outcome").value, $("filter-family").value);
  if (!entries.some((e) => e.i === state.selectedEpisode)) state.selectedEpisode = entries[0]?.i ?? -1;
  renderEpisodeList($("episode-list"), entries, state.selectedEpisode, (i) => {
    state.selectedEpisode = i;
    showEpisodes(file, message);
  });
  if (entries.length === 0) $("episode-detail").replaceChildren(el("p", { class: "muted" }, "no sampled episode matches the filters"));
  else renderEpisode($("episode-detail"), file, state.selectedEpisode);
}

$("inspect-run").addEventListener("change", (e) => {
  state.inspectRun = e.target.value;
  state.inspectUpdate = undefined;
  showEpisodes(undefined, "");
  render();
});
$("inspect-update").addEventListener("change", (e) => {
  if (e.target.value !== "") openUpdate(state.inspectRun, Number(e.target.value));
});
for (const id of ["filter-outcome", "filter-family"]) {
  $(id).addEventListener("change", () => {
    if (state.episodes) showEpisodes(state.episodes, $("episodes-message").textContent);
  });
}

await poll();
setInterval(poll, POLL_MS);
