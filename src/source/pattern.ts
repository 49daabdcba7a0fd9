/**
 * Deterministic frame content from (seed, frame index), so a verifier can regenerate any
 * frame without keeping a copy. Content is a gradient plus a little noise: close enough to a
 * camera image that compression filters see realistic ratios, and always finite for floats so
 * value comparisons (NaN ≠ NaN) work in every reader.
 */
import { elementCount, itemsize, type Dtype } from './frame.js';

/** Frame `index` (0-based over the whole capture) as little-endian C-order bytes. For 'bytes', a JPEG-like blob. */
export function expectedFrame(seed: number, index: number, dtype: Dtype, shape: readonly number[]): Uint8Array {
  const next = rng(seed, index);
  if (dtype === 'bytes') return jpegLike(next, shape);
  const n = elementCount(shape);
  const width = shape.length > 0 ? shape[shape.length - 1]! : 1;
  const out = new Uint8Array(n * itemsize(dtype));
  const v = new DataView(out.buffer);
  for (let e = 0; e < n; e++) {
    const x = e % width;
    const y = (e - x) / width;
    const noise = next();
    if (dtype.startsWith('float')) {
      const f = ((x + y * 0.5 + (index % 1024)) % 4096) * 0.25 + noise / 2 ** 32 - 0.5;
      if (dtype === 'float64') v.setFloat64(e * 8, f, true);
      else if (dtype === 'float32') v.setFloat32(e * 4, f, true);
      else v.setUint16(e * 2, halfBits(f), true);
      continue;
    }
    const int = ((x >> 2) + 3 * (y >> 2) + 7 * index + (noise & 15)) >>> 0;
    switch (itemsize(dtype)) {
      case 1: v.setUint8(e, int & 0xff); break;
      case 2: v.setUint16(e * 2, int & 0xffff, true); break;
      case 4: v.setUint32(e * 4, int, true); break;
      // a non-zero high word on some elements, so 64-bit paths cannot pass by handling only 32 bits
      default: v.setUint32(e * 8, int, true); v.setUint32(e * 8 + 4, noise & 16 ? index & 0xffff : 0, true);
    }
  }
  return out;
}

/** A blob framed like a JPEG (SOI … EOI) whose length varies per frame, as compressed frames do. */
function jpegLike(next: () => number, shape: readonly number[]): Uint8Array {
  const nominal = shape.length > 0 ? elementCount(shape) : 4096;
  const len = Math.max(8, Math.floor(nominal * (0.5 + (next() / 2 ** 32) * 0.5)));
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i += 4) {
    const r = next();
    for (let k = 0; k < 4 && i + k < len; k++) out[i + k] = (r >>> (8 * k)) & 0xff;
  }
  out.set([0xff, 0xd8, 0xff, 0xe0]);
  out.set([0xff, 0xd9], len - 2);
  return out;
}

/** xorshift-multiply generator seeded from (seed, index); fast and identical on every platform. */
function rng(seed: number, index: number): () => number {
  let s = mix((Math.imul(seed >>> 0, 0x9e3779b1) ^ mix(index >>> 0) ^ Math.floor(index / 2 ** 32)) >>> 0) || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return Math.imul(s >>> 0, 0x2c1b3c6d) >>> 0;
  };
}

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** IEEE 754 binary16 bits of `v`, rounding to nearest, ties to even (as numpy does). Node 20 has no Float16Array. */
export function halfBits(v: number): number {
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (Number.isNaN(v)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundEven(a / 2 ** -24); // subnormal; rounding up to 0x400 is the right normal
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  let m = roundEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) { m = 0; e++; }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Inverse of halfBits, for tests and verifiers. */
export function halfValue(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}
