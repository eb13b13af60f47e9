#!/usr/bin/env node
// The `steppo` command. Sources are TypeScript run through tsx's loader, so there is no build step
// between a checkout (or a container image) and a running learner, worker or operator.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
