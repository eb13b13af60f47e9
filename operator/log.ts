// The operator's log lines: text (`[operator <id>] message`, the default) or, with `--log-format json`, one
// JSON object per line with level, time, component and job, for a cluster's log pipeline. A message that
// starts with a job key (`ns/name: …`, as the reconciler's do) gets that job even when no field names it.
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";

export interface LogFields {
  level?: LogLevel;
  /** namespace/name of the job the line is about. */
  job?: string;
  /** Which part of the operator speaks (controller, reconciler, informer, leader, progress-watch, cleanup). */
  component?: string;
}

export type Log = (message: string, fields?: LogFields) => void;

export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

const JOB_PREFIX = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?): /;

/** One line as the format wants it (no trailing newline). PURE apart from `now`. */
export function formatLine(format: LogFormat, instance: string, message: string, f: LogFields = {}, now = new Date()): string {
  if (format === "text") return `[operator ${instance}] ${message}`;
  const job = f.job ?? JOB_PREFIX.exec(message)?.[1];
  return JSON.stringify({
    time: now.toISOString(),
    level: f.level ?? "info",
    component: f.component ?? "operator",
    ...(job ? { job } : {}),
    instance,
    msg: message,
  });
}

export function makeLog(format: LogFormat, instance: string, write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Log {
  return (message, fields) => write(formatLine(format, instance, message, fields));
}

/** The same log with `component` (and any other field) preset. */
export function withFields(log: Log, preset: LogFields): Log {
  return (message, fields) => log(message, { ...preset, ...fields });
}
