// `node --import ./test/support/trace-imports.mjs …` appends every module URL the process resolves to the
// file named by STEPPO_TRACE_IMPORTS (tests of what a command loads; see test/unit/operator-footprint.test.ts).
import { register } from "node:module";

register("./trace-imports-hooks.mjs", import.meta.url);
