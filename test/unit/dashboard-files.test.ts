// The run dashboard's files without a browser: which episodes an update keeps, the observation recovered from
// two contexts, pruning of old samples, reading curve.csv and run directories back (bad ones included), the
// `--ui [PORT]` flag, and the dashboard mounted on the learner's telemetry server.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { takeUiFlag } from "../../cli/ui-command.ts";
import { startTelemetry } from "../../core/telemetry.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import { parseCurveCsv } from "../../runtime/dashboard/curve-file.ts";
import { readSources } from "../../runtime/dashboard/run-source.ts";
import { mountDashboard } from "../../runtime/dashboard/server.ts";
import { observationWords, pickEpisodes } from "../../learner/episode-sample.ts";
import { curveCsv } from "../../learner/report.ts";
import { pruneEpisodeFiles } from "../../learner/run-record.ts";
import { initialPoint } from "../../learner/run-phases.ts";

function traj(id: string, family: string, success: boolean): Trajectory {
  return { trajId: id, workerId: "w", policyVersion: 0, taskId: id, groupId: id, family, steps: [], truncated: false, success };
}

test("pickEpisodes keeps successes and failures half and half, every family in turn, at most k", () => {
  const batch = [
    ...Array.from({ length: 6 }, (_, i) => traj(`s${i}`, i % 2 ? "bridge" : "compare", true)),
    ...Array.from({ length: 6 }, (_, i) => traj(`f${i}`, "bridge", false)),
  ];
  const picked = pickEpisodes(batch, 8);
  assert.equal(picked.length, 8);
  assert.equal(picked.filter((t) => t.success).length, 4);
  assert.deepEqual(
    picked.filter((t) => t.success).map((t) => t.family),
    ["compare", "bridge", "compare", "bridge"],
  );
  // Only two failures: successes fill the rest.
  const fewFailures = pickEpisodes([...batch.slice(0, 6), ...batch.slice(6, 8)], 8);
  assert.equal(fewFailures.filter((t) => !t.success).length, 2);
  assert.equal(fewFailures.length, 8);
  assert.equal(pickEpisodes(batch.slice(0, 3), 8).length, 3);
});

test("observationWords: the <obs> segments the next context adds, the repeated one, or what follows the common prefix", () => {
  const c = ["<bos>", "q", "<obs>", "a", "</obs>"];
  assert.deepEqual(observationWords(c, [...c, "<obs>", "b", "</obs>"]), ["<obs>", "b", "</obs>"]);
  assert.deepEqual(observationWords(c, c), ["<obs>", "a", "</obs>"], "the same answer again");
  assert.deepEqual(observationWords(["<bos>", "x", "y"], ["<bos>", "x", "z", "w"]), ["z", "w"]);
});

test("pruneEpisodeFiles keeps the newest files within the count and byte bounds", () => {
  const dir = mkdtempSync(join(tmpdir(), "steppo-prune-"));
  for (let u = 1; u <= 6; u++) writeFileSync(join(dir, `update-${String(u).padStart(6, "0")}.json`), "x".repeat(100));
  writeFileSync(join(dir, "other.txt"), "kept");
  pruneEpisodeFiles(dir, { files: 4, bytes: 1e9 });
  assert.deepEqual(readdirSync(dir).sort(), ["other.txt", "update-000003.json", "update-000004.json", "update-000005.json", "update-000006.json"]);
  pruneEpisodeFiles(dir, { files: 10, bytes: 250 });
  assert.deepEqual(readdirSync(dir).sort(), ["other.txt", "update-000005.json", "update-000006.json"]);
  pruneEpisodeFiles(dir, { files: 0, bytes: 0 });
  assert.deepEqual(readdirSync(dir).sort(), ["other.txt", "update-000006.json"], "the newest is always kept");
});

test("parseCurveCsv reads curveCsv back and names a truncated line", () => {
  const curve = [initialPoint(0.25), { ...initialPoint(0.5), update: 1, envSteps: 40, trainSuccess: 0.5, seconds: 1.5 }];
  const parsed = parseCurveCsv(curveCsv(curve));
  assert.deepEqual(parsed.problems, []);
  assert.deepEqual(parsed.points, curve);
  const cut = parseCurveCsv(`${curveCsv(curve)}2,80,0.`);
  assert.equal(cut.points.length, 2);
  assert.match(cut.problems[0], /line 4 has 3 fields, expected 18/);
  assert.match(parseCurveCsv("").problems[0], /empty/);
});

test("readSources says what each bad source is: missing, empty, truncated summary, running", () => {
  const dir = mkdtempSync(join(tmpdir(), "steppo-sources-"));
  const empty = join(dir, "empty");
  mkdirSync(empty);
  const truncated = join(dir, "truncated");
  mkdirSync(truncated);
  writeFileSync(join(truncated, "summary.json"), '{"job": "x", "ood": {');
  const running = join(dir, "running");
  mkdirSync(join(running, "episodes"), { recursive: true });
  writeFileSync(join(running, "curve.csv"), curveCsv([initialPoint(0.1)]));
  writeFileSync(join(running, "episodes", "update-000001.json"), "{}");
  const [missing, e, t, r] = readSources([join(dir, "nope"), empty, truncated, running]);
  assert.equal(missing.state, "broken");
  assert.match(missing.problems[0], /does not exist/);
  assert.equal(e.state, "empty");
  assert.match(e.problems[0], /no curve\.csv and no summary\.json/);
  assert.equal(t.state, "broken");
  assert.match(t.problems[0], /summary\.json is not valid JSON .*truncated/);
  assert.equal(r.state, "running");
  assert.deepEqual(r.episodeUpdates, [1]);
  assert.match(r.notes[0], /no summary\.json yet/);
});

test("takeUiFlag: --ui alone, --ui PORT, --ui=PORT", () => {
  assert.deepEqual(takeUiFlag(["job.yaml", "--ui"]), { rest: ["job.yaml"], uiPort: 8464 });
  assert.deepEqual(takeUiFlag(["--ui", "9000", "job.yaml"]), { rest: ["job.yaml"], uiPort: 9000 });
  assert.deepEqual(takeUiFlag(["--ui=0", "job.yaml", "--updates", "2"]), { rest: ["job.yaml", "--updates", "2"], uiPort: 0 });
  assert.deepEqual(takeUiFlag(["job.yaml"]), { rest: ["job.yaml"], uiPort: undefined });
  assert.throws(() => takeUiFlag(["--ui=70000"]), /port number/);
});

test("the learner's telemetry server serves the dashboard beside /metrics", async () => {
  const dir = mkdtempSync(join(tmpdir(), "steppo-telemetry-ui-"));
  writeFileSync(join(dir, "curve.csv"), curveCsv([initialPoint(0.3)]));
  const t = await startTelemetry({
    service: "steppo-learner",
    instance: "j",
    job: "j",
    port: 0,
    host: "127.0.0.1",
    log: () => {},
    routes: (app) => mountDashboard(app, [dir]),
  });
  try {
    const base = `http://127.0.0.1:${t.port}`;
    assert.match(await (await fetch(`${base}/`)).text(), /steppo/);
    assert.equal((await fetch(`${base}/dashboard/app.js`)).status, 200);
    assert.equal((await fetch(`${base}/dashboard/vendor/uplot/uPlot.esm.js`)).status, 200);
    const { runs } = (await (await fetch(`${base}/api/runs`)).json()) as { runs: { state: string; curve: unknown[] }[] };
    assert.equal(runs[0].state, "running");
    assert.equal(runs[0].curve.length, 1);
    const missing = await fetch(`${base}/api/runs/0/episodes/5`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /no episode sample for update 5/);
    assert.equal((await fetch(`${base}/metrics`)).status, 200);
  } finally {
    await t.close();
  }
});
