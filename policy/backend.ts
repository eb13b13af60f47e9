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
      if (kind === "wasm") shareIdentityOnWasm();
      log(`backend: ${kind}${skipped.length ? ` (not available: ${skipped.join("; ")})` : ""}`);
      return kind;
    }
    skipped.push(`${kind}: failed to initialise`);
  }
  throw new Error(`spec.learner.backend: no usable tfjs backend for "${choice}": ${skipped.join("; ")}`);
}

/**
 * tfjs saves every tensor a gradient needs by an Identity kernel (engine.clone), and the wasm backend's
 * Identity copies the data: a copy of every saved activation in each training step. Tensors are immutable
 * and the wasm backend counts references per buffer (its Reshape shares data this way), so Identity can
 * share the buffer as the cpu backend's does. Registered once, for the wasm backend only.
 */
let identityShared = false;
function shareIdentityOnWasm(): void {
  if (identityShared) return;
  identityShared = true;
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel({
    kernelName: "Identity",
    backendName: "wasm",
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      if (x.dtype === "string") throw new Error("Identity: string tensors are not supported on wasm");
      (backend as unknown as { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}

export { tf };
