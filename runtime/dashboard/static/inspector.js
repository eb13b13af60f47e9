// The episode inspector: one update's sampled episodes (learner/episode-sample.ts writes them), filtered by
// outcome and family; one episode's steps in order with V(c_t), Â_t and the step ratio after the update.
import { el, fmt } from "./dom.js";

/** Episodes of `file` that pass the outcome and family filters, with their index in the file. */
export function filterEpisodes(file, outcome, family) {
  return file.episodes
    .map((ep, i) => ({ ep, i }))
    .filter(({ ep }) => (outcome === "all" || (outcome === "success") === ep.success) && (family === "all" || ep.family === family));
}

export function renderEpisodeList(list, entries, selected, onSelect) {
  list.replaceChildren(
    ...entries.map(({ ep, i }) =>
      el(
        "li",
        { class: i === selected ? "episode selected" : "episode", "data-index": i, onclick: () => onSelect(i) },
        el("span", { class: ep.success ? "ok" : "fail" }, ep.success ? "success" : ep.truncated ? "failure (truncated)" : "failure"),
        " ",
        el("span", { class: "muted" }, `${ep.family} · ${ep.steps.length} steps · return ${fmt(ep.return, 2)}`),
        el("div", { class: "muted" }, ep.taskId),
      ),
    ),
  );
}

/** Background of one action token by its advantage: blue for Â > 0, red for Â < 0, stronger for larger |Â|. */
function shade(adv, scale) {
  const alpha = Math.min(1, Math.abs(adv) / scale) * 0.6;
  return adv >= 0 ? `rgba(31, 111, 235, ${alpha.toFixed(3)})` : `rgba(207, 34, 46, ${alpha.toFixed(3)})`;
}

function actionCell(step, scale) {
  if (!step.tokenAdvantages) return el("div", { class: "words" }, step.action.join(" "));
  return el(
    "div",
    { class: "words" },
    step.action
      .map((w, i) =>
        el(
          "span",
          {
            class: "tok",
            style: { background: shade(step.tokenAdvantages[i], scale) },
            title: `Â ${fmt(step.tokenAdvantages[i])}${step.tokenRatios ? `, ratio ${fmt(step.tokenRatios[i], 4)}` : ""}`,
          },
          w,
        ),
      )
      .flatMap((s) => [s, " "]),
  );
}

export function renderEpisode(detail, file, index) {
  const ep = file.episodes[index];
  if (!ep) {
    detail.replaceChildren(el("p", { class: "muted" }, "pick an episode"));
    return;
  }
  const a = file.algorithm;
  const tokenScale = Math.max(1e-6, ...ep.steps.flatMap((s) => (s.tokenAdvantages ?? []).map(Math.abs)));
  const rows = ep.steps.map((s) =>
    el(
      "tr",
      { class: "step-row", "data-step": s.t },
      el("td", { class: "num" }, s.t),
      el("td", {}, el("div", { class: "words context" }, s.context.join(" "))),
      el("td", { class: "action" }, actionCell(s, tokenScale)),
      el("td", {}, el("div", { class: "words observation" }, s.observation.length > 0 ? s.observation.join(" ") : "(episode ended)")),
      el("td", { class: "num reward" }, fmt(s.reward, 2)),
      el("td", { class: "num value" }, fmt(s.value)),
      el("td", { class: "num advantage" }, fmt(s.advantage)),
      el("td", { class: "num ratio" }, fmt(s.ratio, 4)),
      el("td", { class: s.clipped ? "clipped" : "muted" }, s.clipped ? "clipped" : "no"),
    ),
  );
  detail.replaceChildren(
    el(
      "p",
      {},
      el("span", { class: ep.success ? "ok" : "fail" }, ep.success ? "success" : "failure"),
      ` — ${ep.family}, task ${ep.taskId}, policy version ${ep.policyVersion}, return ${fmt(ep.return, 2)}. `,
      el(
        "span",
        { class: "muted" },
        `${a.estimator} + ${a.ratio} ratio, clip ${a.clip}: V(c_t) before the update, Â_t as trained (whitened), ` +
          `ratio π_new/π_old = exp(mean log-prob difference over the step's tokens) after the update; clipped when |ratio − 1| > ${a.clip}` +
          (a.ratio === "token" ? " for any token." : "."),
      ),
      ep.steps.some((s) => s.tokenAdvantages) ? el("span", { class: "muted" }, " Action tokens are shaded by their advantage (blue > 0, red < 0).") : null,
    ),
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { id: "steps-table" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["t", "context c_t", "action a_t", "observation", "r_t", "V(c_t)", "Â_t", "ratio", "clip"].map((h) => el("th", {}, h)),
          ),
        ),
        el("tbody", {}, rows),
      ),
    ),
  );
}
