// Credentials stay out of the job, its ConfigMap, env var values and logs: the validation that refuses
// them in the clear, headersFrom (Secret → env var → header), the operator's desired state and redactUrl.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { UsageError } from "../../core/args.ts";
import { learnerConfig, workerConfig } from "../../core/process-config.ts";
import { parseJob } from "../../crds/job-spec.ts";
import { ValidationError } from "../../crds/schema.ts";
import { hasUrlCredentials, headerEnvVar, isCredentialHeader, redactUrl } from "../../crds/secrets.ts";
import { desiredChildren, desiredLearnerPod, desiredRolloutPod, type JobObject } from "../../operator/desired.ts";
import { plan } from "../../operator/plan.ts";
import { parseHttpEnvConfig, resolveHeaders } from "../../envs/http/config.ts";

const SECRET = "s3cr3t-value";
const NOW = new Date("2026-01-01T00:00:00Z");

function manifest(spec: Record<string, unknown>) {
  return { apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "j", namespace: "ns" }, spec };
}

function httpSpec(config: Record<string, unknown>): Record<string, unknown> {
  return { environment: { name: "http", config: { url: "http://env.ns.svc:8765", ...config } } };
}

/** The problems parseJob reports, as "path: message" lines (none: the job is valid). */
function problems(spec: Record<string, unknown>): string[] {
  try {
    parseJob(manifest(spec), "test");
    return [];
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return err.errors.map((e) => `${e.path}: ${e.message}`);
  }
}

describe("redactUrl and credential detection", () => {
  test("user and password are replaced; URLs without them are unchanged", () => {
    assert.equal(redactUrl(`nats://alice:${SECRET}@nats.ns:4222`), "nats://***@nats.ns:4222");
    assert.equal(redactUrl(`http://tok3n@env:8765/base`), "http://***@env:8765/base");
    assert.equal(redactUrl(`https://u:${SECRET}@h/p`), "https://***@h/p");
    assert.equal(redactUrl("nats://nats:4222"), "nats://nats:4222");
    assert.equal(redactUrl("http://h:1/a@b"), "http://h:1/a@b", "an @ in the path is not a credential");
    assert.equal(redactUrl(`nats://a:4222,nats://u:${SECRET}@b:4222`), "nats://a:4222,nats://***@b:4222", "each URL of a list");
    assert.equal(redactUrl(`u:${SECRET}@host:4222`), "***@host:4222", "without a scheme too");
    assert.equal(redactUrl(`nats://u:p@${SECRET}@h:1`), "nats://***@h:1", "up to the last @ of the authority");
    for (const u of [`nats://u:${SECRET}@h`, `u:${SECRET}@h:4222`, `nats://a,nats://u:p@b`])
      assert.ok(!redactUrl(u).includes(SECRET) && hasUrlCredentials(u), u);
    for (const u of ["nats://h:4222", "http://h/x@y", "h:4222", "tls://h:4222,nats://g:4222"]) assert.ok(!hasUrlCredentials(u), u);
  });

  test("credential-like header names", () => {
    for (const h of ["Authorization", "proxy-authorization", "Cookie", "X-Api-Key", "X-Auth-Token", "X-Client-Secret", "X-Password", "Session-Id"]) {
      assert.ok(isCredentialHeader(h), h);
    }
    for (const h of ["X-Tenant", "Accept-Language", "X-Request-Id", "User-Agent"]) assert.ok(!isCredentialHeader(h), h);
    assert.equal(headerEnvVar("X-Api-Key"), "STEPPO_HEADER_X_API_KEY");
  });
});

describe("job validation refuses credentials in the clear", () => {
  test("a credentialed NATS URL is refused, pointing to credentialsSecret, once", () => {
    const out = problems({ nats: { url: `nats://alice:${SECRET}@nats:4222` } });
    assert.equal(out.length, 1, out.join("\n"));
    assert.match(out[0], /^spec\.nats\.url: url must not contain credentials .*spec\.nats\.credentialsSecret/);
    assert.ok(!out[0].includes(SECRET), "the message does not echo the password");
    assert.deepEqual(problems({ nats: { url: "nats://nats:4222", credentialsSecret: "nats-creds" } }), []);
  });

  test("a credentialed environment URL and credential-like plain headers are refused, pointing to headersFrom", () => {
    const out = problems(httpSpec({ url: `http://u:${SECRET}@env:8765`, headers: { Authorization: `Bearer ${SECRET}`, "X-Tenant": "a" } }));
    assert.equal(out.length, 2, out.join("\n"));
    assert.match(out[0], /^spec\.environment\.config\.url: the URL must not contain credentials .*headersFrom/);
    assert.match(
      out[1],
      /^spec\.environment\.config\.headers\.Authorization: "Authorization" looks like a credential .*headersFrom: \[\{name: Authorization, secretKeyRef/,
    );
    for (const line of out) assert.ok(!line.includes(SECRET), line);
    assert.match(problems(httpSpec({ headers: { "X-Api-Key": "k" } }))[0], /headers\.X-Api-Key: .*looks like a credential/);
  });

  test("headersFrom with a secretKeyRef or an env var is accepted; malformed entries name the field", () => {
    const ok = [
      { name: "Authorization", secretKeyRef: { name: "env-token", key: "token" } },
      { name: "X-Api-Key", env: "MY_API_KEY" },
    ];
    assert.deepEqual(problems(httpSpec({ headersFrom: ok, headers: { "X-Tenant": "a" } })), []);
    assert.deepEqual(parseHttpEnvConfig({ url: "http://h", headersFrom: ok }).headersFrom, ok);
    const bad: [unknown, RegExp][] = [
      [{ name: "Authorization" }, /headersFrom\[0\]: give exactly one of secretKeyRef .* or env/],
      [{ name: "Authorization", env: "A", secretKeyRef: { name: "s", key: "k" } }, /give exactly one of/],
      [{ name: "bad name", env: "A" }, /headersFrom\[0\]\.name: expected an HTTP header name/],
      [{ name: "A", env: "1X" }, /headersFrom\[0\]\.env: expected an environment variable name/],
      [{ name: "A", secretKeyRef: { name: "Bad_Name", key: "k" } }, /headersFrom\[0\]\.secretKeyRef\.name: expected a Secret name/],
      [{ name: "A", secretKeyRef: { name: "s" } }, /headersFrom\[0\]\.secretKeyRef\.key: expected a key of the Secret/],
      [{ name: "A", value: SECRET, env: "A" }, /headersFrom\[0\]\.value: unknown key/],
    ];
    for (const [entry, re] of bad) {
      const out = problems(httpSpec({ headersFrom: [entry] }));
      assert.ok(
        out.some((l) => re.test(l)),
        `${JSON.stringify(entry)}: ${out.join("; ")}`,
      );
    }
    assert.match(problems(httpSpec({ headersFrom: [ok[1], { name: "x-api-key", env: "B" }] }))[0], /headersFrom\[1\]\.name: header "x-api-key" is already set/);
    assert.throws(
      () => parseHttpEnvConfig({ url: "http://h", headers: { "X-Tenant": "a" }, headersFrom: [{ name: "x-tenant", env: "T" }] }),
      /also in headers/,
    );
  });

  test("the worker reads headersFrom values from its environment, naming the variable when one is missing", () => {
    const config = parseHttpEnvConfig({
      url: "http://h",
      headers: { "X-Tenant": "a" },
      headersFrom: [
        { name: "Authorization", secretKeyRef: { name: "env-token", key: "token" } },
        { name: "X-Api-Key", env: "MY_API_KEY" },
      ],
    });
    assert.deepEqual(resolveHeaders(config, { STEPPO_HEADER_AUTHORIZATION: `Bearer ${SECRET}`, MY_API_KEY: "k1" }), {
      "X-Tenant": "a",
      Authorization: `Bearer ${SECRET}`,
      "X-Api-Key": "k1",
    });
    assert.throws(
      () => resolveHeaders(config, { MY_API_KEY: "k1" }),
      /headersFrom\[0\] \(Authorization\): the environment variable STEPPO_HEADER_AUTHORIZATION is not set: .*Secret env-token key token/,
    );
    assert.throws(
      () => resolveHeaders(config, { STEPPO_HEADER_AUTHORIZATION: "t" }),
      /headersFrom\[1\] \(X-Api-Key\): the environment variable MY_API_KEY is not set/,
    );
  });

  test("the learner and worker refuse a credentialed NATS URL from a flag or the environment, without echoing it", () => {
    const dir = mkdtempSync(join(tmpdir(), "steppo-secrets-"));
    const jobFile = join(dir, "job.yaml");
    writeFileSync(jobFile, "apiVersion: steppo.dev/v1alpha1\nkind: StepPOJob\nmetadata: {name: s}\n");
    const refused = (err: unknown) =>
      err instanceof UsageError && /must not contain credentials.*--nats-creds/.test(err.message) && !err.message.includes(SECRET);
    assert.throws(() => learnerConfig({ job: jobFile, nats: `nats://u:${SECRET}@h:4222` }, {}), refused);
    assert.throws(() => workerConfig({ job: jobFile }, { STEPPO_NATS_URL: `u:${SECRET}@h:4222` }), refused);
    assert.equal(workerConfig({ job: jobFile, id: "w" }, { STEPPO_NATS_URL: "nats://h:4222" }).natsUrl, "nats://h:4222");
  });
});

describe("the operator's desired state holds no secret", () => {
  function job(spec: Record<string, unknown>): JobObject {
    const j = parseJob(manifest(spec), "test") as JobObject;
    j.metadata.uid = "uid-1";
    return j;
  }

  test("headersFrom with a secretKeyRef becomes a valueFrom env var in both pods; the ConfigMap names only the Secret", () => {
    const j = job({
      ...httpSpec({
        headers: { "X-Tenant": "a" },
        headersFrom: [{ name: "Authorization", secretKeyRef: { name: "env-token", key: "token" } }],
      }),
      nats: { url: "nats://nats:4222", credentialsSecret: "nats-creds" },
    });
    for (const pod of [desiredLearnerPod(j, 0), desiredRolloutPod(j, 0)]) {
      const env = pod.spec?.containers[0].env ?? [];
      assert.deepEqual(
        env.find((e) => e.name === "STEPPO_HEADER_AUTHORIZATION"),
        { name: "STEPPO_HEADER_AUTHORIZATION", valueFrom: { secretKeyRef: { name: "env-token", key: "token" } } },
        pod.metadata?.name,
      );
      assert.equal(env.find((e) => e.name === "STEPPO_NATS_URL")?.value, "nats://nats:4222");
      assert.ok(
        pod.spec?.volumes?.some((v) => v.secret?.secretName === "nats-creds"),
        "NATS credentials are a mounted Secret",
      );
    }
    const data = desiredChildren(j).configMap.data?.["job.yaml"] ?? "";
    assert.match(data, /secretKeyRef:\s+key: token\s+name: env-token/);
  });

  test("with a Secret holding the value, no ConfigMap or env value contains it (only the kubelet reads it)", () => {
    // The secret value exists only in the Secret; whatever the job names, the desired objects never hold it.
    const j = job(httpSpec({ headersFrom: [{ name: "X-Api-Key", secretKeyRef: { name: "k", key: "v" } }] }));
    const everything = JSON.stringify([desiredChildren(j), desiredLearnerPod(j, 0), desiredRolloutPod(j, 0)]);
    assert.ok(!everything.includes(SECRET));
    const values = [desiredLearnerPod(j, 0), desiredRolloutPod(j, 0)].flatMap((p) => p.spec?.containers[0].env ?? []);
    assert.ok(values.every((e) => (e.name.startsWith("STEPPO_HEADER_") ? e.value === undefined && e.valueFrom?.secretKeyRef : true)));
  });

  test("a job holding a credential in the clear is failed without a ConfigMap or pod being written", () => {
    // As an API server with an older CRD (or none of these checks) would store it: parse a clean job, then inject.
    const j = job(httpSpec({}));
    (j.spec.environment.config as Record<string, unknown>).headers = { Authorization: `Bearer ${SECRET}` };
    const p = plan(j, { pods: [] }, NOW);
    assert.deepEqual(p.create, [], "nothing is created");
    assert.deepEqual(p.update, []);
    const failed = p.status.conditions?.find((c) => c.type === "Failed");
    assert.equal(failed?.status, "True");
    assert.equal(failed?.reason, "CredentialsInSpec");
    assert.match(failed?.message ?? "", /headers\.Authorization: .*headersFrom/);
    assert.ok(!JSON.stringify(p).includes(SECRET), "neither the status nor the events echo the value");
  });
});
