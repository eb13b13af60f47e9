// The 16-bit float formats Hugging Face checkpoints are stored in, to and from float32 (what tfjs computes in).
//
// bf16 is the upper half of a float32 (same exponent, 7 mantissa bits), so reading it is a shift and writing
// it is a rounding of the lower half. fp16 (IEEE half) has 5 exponent and 10 mantissa bits: values beyond
// ±65504 overflow to ±Infinity and small ones become subnormal, as PyTorch's .half() does.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits → float32 value: the bits are the float32's upper 16. */
export function bf16ToF32(bits: number): number {
  u32[0] = bits << 16;
  return f32[0];
}

/** float32 value → bf16 bits, rounded to nearest, ties to even (PyTorch's rounding); NaN stays NaN. */
export function f32ToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if (Number.isNaN(value)) return (x >>> 16) | 0x0040; // keep it a NaN once the low mantissa bits are dropped
  const roundingBias = 0x7fff + ((x >>> 16) & 1);
  return ((x + roundingBias) >>> 16) & 0xffff;
}

/** fp16 bits → float32 value (subnormals, infinities and NaN included). */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // subnormal (or zero)
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** float32 value → fp16 bits, rounded to nearest, ties to even; out of range → ±Infinity. */
export function f32ToF16(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a === Number.POSITIVE_INFINITY) return sign | 0x7c00;
  // Subnormal range: a multiple of 2^-24, rounded (Math.round would round ties up; ties go to even).
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24);
  let exponent = Math.floor(Math.log2(a));
  // log2 can be off by one ulp near powers of two; settle the exponent so that 1 ≤ a / 2^e < 2.
  if (a / 2 ** exponent >= 2) exponent++;
  if (a / 2 ** exponent < 1) exponent--;
  let mantissa = roundHalfEven((a / 2 ** exponent - 1) * 1024);
  if (mantissa === 1024) {
    mantissa = 0;
    exponent++;
  }
  if (exponent > 15) return sign | 0x7c00;
  return sign | ((exponent + 15) << 10) | mantissa;
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
