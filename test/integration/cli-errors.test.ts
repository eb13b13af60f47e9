// What a new user sees: `steppo` as a child process on ordinary mistakes prints the message (no stack
// unless --debug), every command answers --help with its own usage, and --version the package's version.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const BIN = join(import.meta.dirname, "../../bin/steppo.mjs");
const dir = mkdtempSync(join(tmpdir(), "steppo-cli-errors-"));
const HEAD = "apiVersion: steppo.dev/v1alpha1\nkind: StepPOJob\nmetadata: {name: demo}\n";

function steppo(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60_000 });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** A Node stack frame ("    at fn (file:line:col)"). */
const STACK = /^\s+at .+:\d+:\d+\)?$/m;

test("ordinary errors print one message and no stack trace; --debug adds the stack", () => {
  const cases: [string[], RegExp][] = [
    [["validate", join(dir, "missing.yaml")], /^steppo: cannot read job file .*missing\.yaml: ENOENT/],
    [["validate", dir], /^steppo: cannot read job file .*: is a directory, not a job file/],
    [["run", file("bad.yaml", `${HEAD}spec: [unclosed\n`)], /^steppo: .*bad\.yaml: not valid YAML: /],
    [["validate", file("two.yaml", `${HEAD}---\n${HEAD}`)], /^steppo: .*two\.yaml: holds 2 YAML documents; a job file holds exactly one StepPOJob/],
  ];
  for (const [args, message] of cases) {
    const out = steppo(args);
    assert.equal(out.status, 1, `${args.join(" ")}: ${out.stderr}`);
    assert.match(out.stderr, message);
    assert.doesNotMatch(out.stderr, STACK, `${args.join(" ")} printed a stack:\n${out.stderr}`);
  }
  const debug = steppo(["validate", "--debug", join(dir, "missing.yaml")]);
  assert.equal(debug.status, 1);
  assert.match(debug.stderr, STACK);
});

test("validate refuses an environment config that run would refuse", () => {
  const out = steppo(["validate", file("env.yaml", `${HEAD}spec:\n  environment: {name: multihop-qa, config: {people: -3}}\n`)]);
  assert.equal(out.status, 1, out.stderr);
  assert.match(out.stderr, /spec\.environment\.config\.people: expected an integer between 2 and 500, got -3/);
  assert.equal(out.stdout, "");
});

test("--updates 0 is refused like updates: 0 in the job file", () => {
  const out = steppo(["run", file("ok.yaml", HEAD), "--updates", "0"]);
  assert.equal(out.status, 2);
  assert.match(out.stderr, /--updates must be between 1 and 1000000/);
});

test("every command has --help (its own usage, exit 0), and steppo --version prints package.json's version", () => {
  for (const command of ["run", "validate", "learner", "worker", "operator", "results"]) {
    const out = steppo([command, "--help"]);
    assert.equal(out.status, 0, `${command} --help: ${out.stderr}`);
    assert.match(out.stdout, new RegExp(`^usage: steppo ${command} `), command);
    assert.match(out.stdout, new RegExp(`^ {2}${command}\\b`, "m"), `${command} usage describes ${command}`);
    assert.doesNotMatch(out.stdout + out.stderr, /Unknown option/);
  }
  assert.equal(steppo(["worker", "-h"]).status, 0);
  const { version } = JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8"));
  const out = steppo(["--version"]);
  assert.equal(out.status, 0);
  assert.equal(out.stdout, `steppo ${version}\n`);
});
