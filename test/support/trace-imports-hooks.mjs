// Module hooks for trace-imports.mjs: records each resolved URL (ESM imports and, through them, the CommonJS
// packages they load).
import { appendFileSync } from "node:fs";

const out = process.env.STEPPO_TRACE_IMPORTS;

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (out) appendFileSync(out, `${r.url}\n`);
  return r;
}
