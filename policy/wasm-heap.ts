// Plain-JS operations on the wasm backend's own memory: a tensor of the wasm backend lives in the module's
// heap, and the backend hands out views of it (typedArrayFromHeap) and makes tensors over fresh heap memory
// (makeOutput). An op written as a loop over such views reads its inputs and writes its output in place,
// where dataSync() would copy each input out of the heap into a new ArrayBuffer and tf.tensor() the output
// back in (two copies and garbage per call: the row gathers of one training step moved ~5 MB that way).
// Callers use these on the wasm backend only and keep tfjs ops for the others.
import { tf } from "./backend.ts";

/** The two methods of tfjs-backend-wasm's BackendWasm used here (public methods of the backend class). */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array;
}

/**
 * Float32 tensors of `shapes` computed in place: `fill(outs, ...ins)` gets views of the new tensors' (unset)
 * memory and views of `inputs`' data, in order. Every view is taken after the allocations, which may grow the
 * heap and so detach views taken before them; `fill` must not allocate tensors itself.
 */
export function onHeapMany(shapes: number[][], inputs: tf.Tensor[], fill: (outs: Float32Array[], ...ins: (Float32Array | Int32Array)[]) => void): tf.Tensor[] {
  const backend = tf.backend() as unknown as WasmHeapBackend;
  const infos = shapes.map((shape) => backend.makeOutput(shape, "float32"));
  const outs = infos.map((info) => backend.typedArrayFromHeap(info) as Float32Array);
  fill(outs, ...inputs.map((t) => backend.typedArrayFromHeap(t)));
  return infos.map((info) => tf.engine().makeTensorFromTensorInfo(info));
}

/** One float32 tensor of `shape` computed in place (onHeapMany with one output). */
export function onHeap(shape: number[], inputs: tf.Tensor[], fill: (out: Float32Array, ...ins: (Float32Array | Int32Array)[]) => void): tf.Tensor {
  return onHeapMany([shape], inputs, ([out], ...ins) => fill(out, ...ins))[0];
}
