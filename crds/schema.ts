// A tiny schema builder: one definition gives the OpenAPI v3 structural schema (for the CRD and for
// validation) and the TypeScript type (through `Static`), so the two can never drift apart.
// Only the subset Kubernetes structural schemas allow is modelled.

export interface Schema<T = unknown, D extends boolean = boolean> {
  readonly openapi: OpenApiSchema;
  /** Phantom fields carrying the static type and whether a default exists; never set at run time. */
  readonly _type?: T;
  readonly _hasDefault?: D;
}

type Defaulted<O> = O extends { default: unknown } ? true : false;

export type Static<S> = S extends Schema<infer T> ? T : never;

export interface OpenApiSchema {
  type?: "object" | "string" | "number" | "integer" | "boolean" | "array";
  description?: string;
  default?: unknown;
  enum?: readonly unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  maxItems?: number;
  maxProperties?: number;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  additionalProperties?: OpenApiSchema | boolean;
  items?: OpenApiSchema;
  nullable?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-int-or-string"?: boolean;
  "x-kubernetes-validations"?: { rule: string; message: string; fieldPath?: string }[];
}

interface Common {
  description?: string;
}

function make<T, D extends boolean = false>(openapi: OpenApiSchema): Schema<T, D> {
  return { openapi };
}

type NumberOptions = Common & { default?: number; minimum?: number; maximum?: number; exclusiveMinimum?: boolean };

export function number<O extends NumberOptions>(o: O = {} as O): Schema<number, Defaulted<O>> {
  return make({ type: "number", ...o });
}

export function integer<O extends Common & { default?: number; minimum?: number; maximum?: number }>(o: O = {} as O): Schema<number, Defaulted<O>> {
  return make({ type: "integer", ...o });
}

export function string<O extends Common & { default?: string; minLength?: number; maxLength?: number; pattern?: string }>(
  o: O = {} as O,
): Schema<string, Defaulted<O>> {
  return make({ type: "string", ...o });
}

export function boolean<O extends Common & { default?: boolean }>(o: O = {} as O): Schema<boolean, Defaulted<O>> {
  return make({ type: "boolean", ...o });
}

export function enumOf<const V extends readonly string[], O extends Common & { default?: V[number] } = Common>(
  values: V,
  o: O = {} as O,
): Schema<V[number], Defaulted<O>> {
  return make({ type: "string", enum: values, ...o });
}

export function array<T, O extends Common & { default?: T[]; maxItems?: number } = Common>(items: Schema<T>, o: O = {} as O): Schema<T[], Defaulted<O>> {
  return make({ type: "array", items: items.openapi, ...o });
}

/** A string-keyed map (labels, nodeSelector, resource lists). */
export function map<T>(values: Schema<T>, o: Common & { maxProperties?: number } = {}): Schema<Record<string, T>> {
  return make({ type: "object", additionalProperties: values.openapi, ...o });
}

/** Arbitrary JSON kept as-is (environment config, tolerations, resources). */
export function free(o: Common = {}): Schema<Record<string, unknown>> {
  return make({ type: "object", "x-kubernetes-preserve-unknown-fields": true, ...o });
}

/** A Kubernetes quantity such as `2`, `500m` or `16Gi`. */
export function quantity(o: Common = {}): Schema<string | number> {
  return make({ "x-kubernetes-int-or-string": true, ...o });
}

// A property is present after defaulting when it is required or has a default. Objects built with
// `object()` default to `{}` and so are always present; maps and free-form objects are not.
type Props = Record<string, Schema<unknown>>;
type HasDefault<S> = S extends Schema<unknown, infer D> ? (boolean extends D ? false : D) : false;
type Present<P extends Props, R extends string> = {
  [K in keyof P]: K extends R ? K : HasDefault<P[K]> extends true ? K : never;
}[keyof P];
type ObjectOf<P extends Props, R extends string> = { [K in Present<P, R>]: Static<P[K]> } & { [K in Exclude<keyof P, Present<P, R>>]?: Static<P[K]> };
type Flatten<T> = { [K in keyof T]: T[K] };

/**
 * A cross-field rule, stated once: `rule` is the CEL the API server evaluates, `check` the same
 * predicate for local validation (`steppo run` has no API server).
 */
export interface Validation {
  rule: string;
  message: string;
  fieldPath?: string;
  check: (self: Record<string, unknown>) => boolean;
  /**
   * The CEL rule guards every field with has() and so holds on a bare `{}`: the object can keep
   * `default: {}` instead of writing out its fully defaulted value (see object()).
   */
  holdsOnEmpty?: boolean;
}

// Local predicates by schema node; kept out of the OpenAPI object so the CRD stays pure data.
const localChecks = new WeakMap<OpenApiSchema, Validation[]>();

export interface ObjectOptions<R extends string> extends Common {
  required?: readonly R[];
  validations?: Validation[];
  /** Object-level default; normally left out so that the fields' own defaults apply. */
  optional?: boolean;
  /** Keep fields not in `props` as they are (x-kubernetes-preserve-unknown-fields): a Kubernetes type only partly modelled. */
  preserveUnknownFields?: boolean;
}

export interface ObjectSchema<P extends Props, T> extends Schema<T, true> {
  readonly props: P;
}

export function object<P extends Props, R extends Extract<keyof P, string> = never>(
  props: P,
  o: ObjectOptions<R> = {},
): ObjectSchema<P, Flatten<ObjectOf<P, R>>> {
  const properties: Record<string, OpenApiSchema> = {};
  for (const [k, v] of Object.entries(props)) properties[k] = v.openapi;
  const openapi: OpenApiSchema = { type: "object", properties };
  if (o.description) openapi.description = o.description;
  if (o.required?.length) openapi.required = [...o.required];
  if (o.preserveUnknownFields) openapi["x-kubernetes-preserve-unknown-fields"] = true;
  if (o.validations?.length) {
    openapi["x-kubernetes-validations"] = o.validations.map(({ rule, message, fieldPath }) => (fieldPath ? { rule, message, fieldPath } : { rule, message }));
    localChecks.set(openapi, o.validations);
  }
  // Kubernetes only applies nested defaults when the parent object exists; `default: {}` makes the
  // API server materialise the parent so a bare manifest gets the same defaults as `steppo run`.
  if (!o.required?.length && !o.optional) {
    openapi.default = {};
    // The API server evaluates an object's CEL rules against its `default` as written, without first
    // applying the nested defaults, so `{}` would fail a rule such as `self.a % self.b == 0`. Such
    // objects default to their fully defaulted value instead (the same object after defaulting).
    if (o.validations?.some((v) => !v.holdsOnEmpty)) {
      const errors: FieldError[] = [];
      openapi.default = validateAndDefault(openapi, {}, "(default)", errors);
      if (errors.length) throw new Error(`schema bug: the default object violates its own rules: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`);
    }
  }
  return { openapi, props };
}

// ---------------------------------------------------------------------------------------------------
// Validation and defaulting (the same rules the API server applies, minus CEL, which `validations`
// in the job-spec module re-implements in TypeScript for local runs).

export interface FieldError {
  path: string;
  message: string;
}

export class ValidationError extends Error {
  constructor(
    readonly source: string,
    readonly errors: FieldError[],
  ) {
    super(`${source}: invalid StepPOJob\n${errors.map((e) => `  - ${e.path}: ${e.message}`).join("\n")}`);
    this.name = "ValidationError";
  }
}

/**
 * Keys that name Object.prototype machinery: never fields of a job and never copied into an object,
 * where `__proto__` would replace the prototype and `constructor` shadow it.
 */
/** A CEL list literal of strings, for rules that test membership (`x in [...]`, `[...].all(…)`). */
export const celList = (xs: readonly string[]): string => `[${xs.map((x) => `'${x}'`).join(", ")}]`;

export const RESERVED_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

const RESERVED_MESSAGE = "reserved key (__proto__, constructor and prototype are never fields)";

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "number" && Number.isNaN(v)) return "NaN";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** Returns a defaulted deep copy of `value` and appends every violation to `errors`. */
export function validateAndDefault(s: OpenApiSchema, value: unknown, path: string, errors: FieldError[]): unknown {
  let v = value;
  if (v === undefined && s.default !== undefined) v = structuredClone(s.default);
  if (v === undefined) return undefined;
  if (v === null && s.nullable) return null;

  if (s["x-kubernetes-int-or-string"]) {
    if (typeof v === "number" && !Number.isSafeInteger(v)) errors.push({ path, message: `must be a safe integer or a string, got ${v}` });
    else if (typeof v !== "string" && typeof v !== "number") errors.push({ path, message: `must be an integer or a string, got ${typeName(v)}` });
    return v;
  }
  switch (s.type) {
    case "object": {
      if (typeName(v) !== "object") {
        errors.push({ path, message: `must be an object, got ${typeName(v)}` });
        return v;
      }
      const obj = v as Record<string, unknown>;
      if (s["x-kubernetes-preserve-unknown-fields"] && !s.properties) {
        checkFreeValue(obj, path, errors);
        return structuredClone(obj);
      }
      const out: Record<string, unknown> = {};
      for (const r of s.required ?? []) if (obj[r] === undefined) errors.push({ path: `${path}.${r}`, message: "is required" });
      if (s.properties) {
        const properties = s.properties;
        // Own properties only: `"constructor" in properties` is true for every object.
        for (const key of Object.keys(obj)) {
          if (Object.hasOwn(properties, key)) continue;
          if (s["x-kubernetes-preserve-unknown-fields"] && !RESERVED_KEYS.has(key)) out[key] = structuredClone(obj[key]);
          else errors.push({ path: `${path}.${key}`, message: `unknown field (known: ${Object.keys(properties).join(", ")})` });
        }
        for (const [key, ps] of Object.entries(properties)) {
          const child = validateAndDefault(ps, Object.hasOwn(obj, key) ? obj[key] : undefined, `${path}.${key}`, errors);
          if (child !== undefined) out[key] = child;
        }
        if (s.maxProperties !== undefined && Object.keys(obj).length > s.maxProperties)
          errors.push({ path, message: `must have at most ${s.maxProperties} entries` });
      } else if (s.additionalProperties && typeof s.additionalProperties === "object") {
        if (s.maxProperties !== undefined && Object.keys(obj).length > s.maxProperties)
          errors.push({ path, message: `must have at most ${s.maxProperties} entries` });
        for (const [key, item] of Object.entries(obj)) {
          if (RESERVED_KEYS.has(key)) errors.push({ path: `${path}.${key}`, message: RESERVED_MESSAGE });
          else out[key] = validateAndDefault(s.additionalProperties, item, `${path}.${key}`, errors);
        }
      }
      for (const v of localChecks.get(s) ?? []) {
        if (!v.check(out)) errors.push({ path: `${path}${v.fieldPath ?? ""}`, message: v.message });
      }
      return out;
    }
    case "array": {
      if (!Array.isArray(v)) {
        errors.push({ path, message: `must be an array, got ${typeName(v)}` });
        return v;
      }
      if (s.maxItems !== undefined && v.length > s.maxItems) errors.push({ path, message: `must have at most ${s.maxItems} items` });
      return v.map((item, i) => (s.items ? validateAndDefault(s.items, item, `${path}[${i}]`, errors) : item));
    }
    case "string": {
      if (typeof v !== "string") {
        errors.push({ path, message: `must be a string, got ${typeName(v)}` });
        return v;
      }
      if (s.enum && !s.enum.includes(v)) errors.push({ path, message: `must be one of ${s.enum.join(", ")}; got "${v}"` });
      if (s.minLength !== undefined && v.length < s.minLength) errors.push({ path, message: `must not be empty` });
      if (s.maxLength !== undefined && v.length > s.maxLength) errors.push({ path, message: `must be at most ${s.maxLength} characters long` });
      if (s.pattern && !new RegExp(s.pattern).test(v)) errors.push({ path, message: `must match ${s.pattern}; got "${v}"` });
      return v;
    }
    case "number":
    case "integer": {
      if (typeof v !== "number" || Number.isNaN(v)) {
        errors.push({ path, message: `must be ${s.type === "integer" ? "an integer" : "a number"}, got ${typeName(v)}` });
        return v;
      }
      if (!Number.isFinite(v)) {
        errors.push({ path, message: `must be a finite number, got ${v}` });
        return v;
      }
      // Beyond 2^53 integers are no longer exact (2^53 + 1 reads back as 2^53).
      if (s.type === "integer" && !Number.isSafeInteger(v))
        errors.push({ path, message: Number.isInteger(v) ? `must be a safe integer (at most 2^53 - 1), got ${v}` : `must be an integer, got ${v}` });
      if (s.minimum !== undefined && (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum))
        errors.push({ path, message: `must be ${s.exclusiveMinimum ? ">" : ">="} ${s.minimum}, got ${v}` });
      if (s.maximum !== undefined && v > s.maximum) errors.push({ path, message: `must be <= ${s.maximum}, got ${v}` });
      return v;
    }
    case "boolean": {
      if (typeof v !== "boolean") errors.push({ path, message: `must be a boolean, got ${typeName(v)}` });
      return v;
    }
    default:
      return v;
  }
}

/**
 * Free-form values (environment config, tolerations) are kept as given, but not every value: reserved
 * keys and non-finite numbers (YAML's `.inf`, `.nan`, `1e400`) are refused wherever they are nested.
 */
function checkFreeValue(value: unknown, path: string, errors: FieldError[]): void {
  if (typeof value === "number" && !Number.isFinite(value)) {
    errors.push({ path, message: `must be a finite number, got ${value}` });
  } else if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) checkFreeValue(item, `${path}[${i}]`, errors);
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (RESERVED_KEYS.has(key)) errors.push({ path: `${path}.${key}`, message: RESERVED_MESSAGE });
      else checkFreeValue(item, `${path}.${key}`, errors);
    }
  }
}
