/** Turning JavaScript values into HDF5 element bytes (attributes, fill values). */
import { parseDtype, type Datatype, type DtypeSpec } from './datatype.js';
import { usageError } from './errors.js';

export type TypedArray =
  | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

export type AttrValue =
  | number | bigint | string | boolean
  | number[] | string[] | bigint[]
  | TypedArray
  | { dtype: DtypeSpec; shape?: number[]; data: Uint8Array | TypedArray | number[] | string[] }
  /** object references, a list of paths per element (DIMENSION_LIST): resolved by the file */
  | { references: string[][] };

/**
 * A value before heap placement: element bytes, or variable-length elements still to be stored
 * in a global heap (each element's bytes, and its length as HDF5 counts it: bytes for a string,
 * references for a sequence of them).
 */
export type PlainValue =
  | { type: Datatype; shape: number[]; data: Uint8Array }
  | { type: Datatype & { class: 'vlen-str' | 'vlen-ref' }; shape: number[]; objects: Uint8Array[]; lengths: number[] };

/**
 * A fixed-length, NUL-terminated string: the form libhdf5's own conventions read (CLASS and NAME
 * of dimension scales and images are compared as C strings) and compact datasets hold.
 */
export function fixedString(text: string): { dtype: Datatype; shape: number[]; data: string[] } {
  // one byte per character in UTF-8: ASCII
  const size = Buffer.byteLength(text, 'utf8') + 1;
  return { dtype: { class: 'string', size, charset: size - 1 === text.length ? 'ascii' : 'utf8', nullterm: true }, shape: [], data: [text] };
}

function vlenStrings(strings: string[], shape: number[]): PlainValue {
  const objects = strings.map((x) => new Uint8Array(Buffer.from(x, 'utf8')));
  return { type: { class: 'vlen-str', size: 16 }, shape, objects, lengths: objects.map((o) => o.length) };
}

function typedDtype(a: TypedArray): Datatype {
  const name =
    a instanceof Int8Array ? 'int8' : a instanceof Uint8Array ? 'uint8' : a instanceof Int16Array ? 'int16'
    : a instanceof Uint16Array ? 'uint16' : a instanceof Int32Array ? 'int32' : a instanceof Uint32Array ? 'uint32'
    : a instanceof BigInt64Array ? 'int64' : a instanceof BigUint64Array ? 'uint64'
    : a instanceof Float32Array ? 'float32' : 'float64';
  return parseDtype(name);
}

function bytesOf(a: TypedArray): Uint8Array { return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice(); }

/** encode JS numbers into the element bytes of a numeric datatype */
export function encodeNumbers(values: (number | bigint)[], t: Datatype): Uint8Array {
  if (t.class !== 'int' && t.class !== 'float') throw usageError('value', `cannot store numbers as ${t.class}`);
  const out = new Uint8Array(values.length * t.size);
  const v = new DataView(out.buffer);
  const le = !t.bigEndian;
  values.forEach((x, i) => {
    const o = i * t.size;
    if (t.class === 'float') {
      const n = Number(x);
      if (t.size === 8) v.setFloat64(o, n, le);
      else if (t.size === 4) v.setFloat32(o, n, le);
      else v.setUint16(o, float16Bits(n), le);
    } else if (t.size === 8) {
      if (t.signed) v.setBigInt64(o, BigInt(x), le); else v.setBigUint64(o, BigInt(x), le);
    } else {
      const n = Number(x);
      if (t.size === 1) { if (t.signed) v.setInt8(o, n); else v.setUint8(o, n); }
      else if (t.size === 2) { if (t.signed) v.setInt16(o, n, le); else v.setUint16(o, n, le); }
      else if (t.signed) v.setInt32(o, n, le); else v.setUint32(o, n, le);
    }
  });
  return out;
}

/** IEEE half precision, round to nearest even */
export function float16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

export function toPlain(value: AttrValue): PlainValue {
  if (typeof value === 'string') return vlenStrings([value], []);
  if (typeof value === 'boolean') return { type: parseDtype('uint8'), shape: [], data: new Uint8Array([value ? 1 : 0]) };
  if (typeof value === 'bigint') { const t = parseDtype('int64'); return { type: t, shape: [], data: encodeNumbers([value], t) }; }
  if (typeof value === 'number') {
    const t = parseDtype(Number.isSafeInteger(value) ? 'int64' : 'float64');
    return { type: t, shape: [], data: encodeNumbers([value], t) };
  }
  if (ArrayBuffer.isView(value)) {
    return { type: typedDtype(value as TypedArray), shape: [(value as TypedArray).length], data: bytesOf(value as TypedArray) };
  }
  if (Array.isArray(value)) {
    if (value.length && value.every((x) => typeof x === 'string')) {
      return vlenStrings(value as string[], [value.length]);
    }
    const nums = value as (number | bigint)[];
    const allInt = nums.every((x) => typeof x === 'bigint' || Number.isSafeInteger(x));
    const t = parseDtype(allInt ? 'int64' : 'float64');
    return { type: t, shape: [nums.length], data: encodeNumbers(nums, t) };
  }
  if ('references' in value) throw usageError('attribute', 'references are resolved by the file (H5File.setAttr)');
  const t = parseDtype(value.dtype);
  const d = value.data;
  const shape = value.shape ?? (ArrayBuffer.isView(d) ? [] : [d.length]);
  if (t.class === 'vlen-str') {
    if (!Array.isArray(d) || !d.every((x) => typeof x === 'string')) throw usageError('attribute', 'vlen-str values must be strings');
    return vlenStrings(d as string[], shape);
  }
  if (t.class === 'string' && Array.isArray(d)) {
    const strs = d as string[];
    const out = new Uint8Array(strs.length * t.size);
    strs.forEach((s, i) => out.set(Buffer.from(s, 'utf8').subarray(0, t.size), i * t.size));
    return { type: t, shape, data: out };
  }
  if (Array.isArray(d)) return { type: t, shape, data: encodeNumbers(d as number[], t) };
  return { type: t, shape, data: d instanceof Uint8Array ? d : bytesOf(d as TypedArray) };
}
