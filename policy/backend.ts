// tfjs backend selection, best first: the native GPU binding (the learner image), the native CPU
// binding, then WebAssembly and plain JS which run everywhere (CI, laptops, this repo's tests).
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

export type BackendChoice = "auto" | "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu";

const NATIVE_PACKAGES: Record<"tensorflow-gpu" | "tensorflow", string> = {
  "tensorflow-gpu": "@tensorflow/tfjs-node-gpu",
  tensorflow: "@tensorflow/tfjs-node",
};

async function tryNative(kind: "tensorflow-gpu" | "tensorflow"): Promise<string | undefined> {
  try {
    // The native packages register the "tensorflow" backend on import; they are optional dependencies
    // whose libtensorflow may be missing, in which case the import throws.
    await import(NATIVE_PACKAGES[kind]);
    if (await tf.setBackend("tensorflow")) return undefined;
    return "setBackend('tensorflow') returned false";
  } catch (err) {
    return (err as Error).message.split("\n")[0];
  }
}

/** Selects and initialises a backend; returns its name. Logs what it tried. */
export async function selectBackend(choice: BackendChoice = "auto", log: (line: string) => void = console.log): Promise<string> {
  const order: BackendChoice[] = choice === "auto" ? ["tensorflow-gpu", "tensorflow", "wasm", "cpu"] : [choice];
  const skipped: string[] = [];
  for (const kind of order) {
    if (kind === "tensorflow-gpu" || kind === "tensorflow") {
      const why = await tryNative(kind);
      if (why === undefined) {
        log(`backend: ${kind} (${NATIVE_PACKAGES[kind]})`);
        return kind;
      }
      skipped.push(`${NATIVE_PACKAGES[kind]}: ${why}`);
      continue;
    }
    if (await tf.setBackend(kind as string)) {
      await tf.ready();
      log(`backend: ${kind}${skipped.length ? ` (not available: ${skipped.join("; ")})` : ""}`);
      return kind;
    }
    skipped.push(`${kind}: failed to initialise`);
  }
  throw new Error(`spec.learner.backend: no usable tfjs backend for "${choice}": ${skipped.join("; ")}`);
}

export { tf };
