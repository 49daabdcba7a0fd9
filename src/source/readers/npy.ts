/**
 * NumPy .npy files (format versions 1, 2, 3).
 *
 * Frame axis rule, chosen to be explicit rather than clever:
 *  - `stack: true`  → the first axis counts frames;
 *  - `stack: false` → the whole array is one frame;
 *  - unset          → the first axis counts frames only when the array's rank is the declared
 *                     frame rank + 1 (e.g. --shape 512x512 and an array of shape (10, 512, 512));
 *                     otherwise the whole array is one frame.
 * With a declared shape, the frame shape found must equal it.
 */
import { FurError } from '../../errors.js';
import { elementCount, frameBytes, itemsize, sameShape, swapBytes, type DecodedFrames, type NumericDtype } from '../frame.js';

export interface NpyOptions {
  stack?: boolean;
  /** Declared frame shape (without the frame axis). */
  shape?: number[];
}

export interface NpyHeader {
  dtype: NumericDtype;
  bigEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
  /** Offset of the first data byte. */
  dataOffset: number;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const KINDS: Record<string, NumericDtype> = {
  i1: 'int8', u1: 'uint8', i2: 'int16', u2: 'uint16', i4: 'int32', u4: 'uint32', i8: 'int64', u8: 'uint64',
  f2: 'float16', f4: 'float32', f8: 'float64',
};

export function decodeNpy(bytes: Uint8Array, file: string, opts: NpyOptions = {}): DecodedFrames {
  const h = parseNpyHeader(bytes, file);
  if (h.fortranOrder) {
    throw new FurError('npy-fortran-order',
      `${file}: array is stored in Fortran order; save it C-ordered (np.save(f, np.ascontiguousarray(a)))`, { file });
  }
  const total = elementCount(h.shape) * itemsize(h.dtype);
  const available = bytes.length - h.dataOffset;
  if (available < total) {
    throw new FurError('npy-truncated',
      `${file}: truncated: header promises ${total} data bytes for shape (${h.shape.join(', ')}) but only ${available} follow; ` +
      'the file may still be being written', { file, expected: total, actual: available });
  }
  if (available > total) {
    throw new FurError('npy-size',
      `${file}: ${available - total} unexpected bytes after the array data; the header does not describe this file`,
      { file, expected: total, actual: available });
  }

  const stacked = opts.stack ?? (opts.shape !== undefined && h.shape.length === opts.shape.length + 1);
  if (stacked && h.shape.length === 0) {
    throw new FurError('frame-mismatch', `${file}: a 0-d array has no frame axis; do not set stack for this file`, { file });
  }
  const count = stacked ? h.shape[0]! : 1;
  const shape = stacked ? h.shape.slice(1) : h.shape.slice();
  if (opts.shape !== undefined && !sameShape(shape, opts.shape)) {
    throw new FurError('frame-mismatch',
      `${file}: frame shape ${shape.join('x') || '()'} differs from the declared --shape ${opts.shape.join('x')}`,
      { file, shape, declared: opts.shape });
  }
  if (count === 0 || frameBytes(h.dtype, shape) === 0) {
    throw new FurError('empty-frame', `${file}: array of shape (${h.shape.join(', ')}) holds no frame data`, { file, shape: h.shape });
  }

  let data = bytes.subarray(h.dataOffset);
  if (h.bigEndian && itemsize(h.dtype) > 1) {
    data = data.slice();
    swapBytes(data, itemsize(h.dtype));
  }
  return { dtype: h.dtype, shape, count, data };
}

export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) {
    if (bytes.length < 10 && MAGIC.slice(0, bytes.length).every((b, i) => bytes[i] === b)) truncatedHeader(file);
    throw new FurError('npy-bad-header', `${file}: not a .npy file (missing \\x93NUMPY magic)`, { file });
  }
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) truncatedHeader(file);
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new FurError('npy-bad-header', `${file}: unsupported .npy format version ${major}.${bytes[7]}`, { file, version: major });
  }
  if (bytes.length < start + headerLen) truncatedHeader(file);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));

  let dict: unknown;
  try {
    dict = parsePyLiteral(text);
  } catch (e) {
    throw new FurError('npy-bad-header', `${file}: cannot parse .npy header: ${(e as Error).message}`, { file, header: text }, { cause: e });
  }
  if (typeof dict !== 'object' || dict === null || Array.isArray(dict)) {
    throw new FurError('npy-bad-header', `${file}: .npy header is not a dictionary`, { file, header: text });
  }
  const { descr, fortran_order: fortran, shape } = dict as Record<string, unknown>;
  if (typeof descr !== 'string') {
    throw new FurError('npy-unsupported-dtype',
      `${file}: structured dtype is not supported; save a plain numeric array`, { file, descr: JSON.stringify(descr) });
  }
  const m = /^([<>|=]?)([a-z]\d+)$/.exec(descr);
  const dtype = m ? KINDS[m[2]!] : undefined;
  if (!m || !dtype) {
    throw new FurError('npy-unsupported-dtype',
      `${file}: dtype '${descr}' is not supported; use a numeric dtype (int8..uint64, float16/32/64)`, { file, descr });
  }
  if (typeof fortran !== 'boolean' || !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new FurError('npy-bad-header', `${file}: .npy header lacks a valid fortran_order or shape`, { file, header: text });
  }
  return { dtype, bigEndian: m[1] === '>', fortranOrder: fortran, shape: shape as number[], dataOffset: start + headerLen };
}

function truncatedHeader(file: string): never {
  throw new FurError('npy-truncated', `${file}: truncated inside the .npy header; the file may still be being written`, { file });
}

/** Parses the small subset of Python literal syntax that np.save writes in headers. */
function parsePyLiteral(src: string): unknown {
  let i = 0;
  const skip = () => { while (i < src.length && /\s/.test(src[i]!)) i++; };
  const fail = (what: string): never => { throw new Error(`${what} at offset ${i}`); };

  function value(): unknown {
    skip();
    const c = src[i];
    if (c === '{') return dict();
    if (c === '(' || c === '[') return sequence(c === '(' ? ')' : ']');
    if (c === "'" || c === '"') return string();
    const word = /^(True|False|None|-?\d+L?)/.exec(src.slice(i));
    if (!word) return fail('unexpected text');
    i += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    return Number(word[0].replace('L', ''));
  }
  function string(): string {
    const q = src[i++];
    const end = src.indexOf(q!, i);
    if (end < 0) fail('unterminated string');
    const s = src.slice(i, end);
    i = end + 1;
    return s;
  }
  function sequence(close: string): unknown[] {
    i++;
    const out: unknown[] = [];
    for (;;) {
      skip();
      if (src[i] === close) { i++; return out; }
      out.push(value());
      skip();
      if (src[i] === ',') i++;
      else if (src[i] !== close) fail(`expected ',' or '${close}'`);
    }
  }
  function dict(): Record<string, unknown> {
    i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      skip();
      if (src[i] === '}') { i++; return out; }
      const k = value();
      if (typeof k !== 'string') fail('dictionary key is not a string');
      skip();
      if (src[i++] !== ':') fail("expected ':'");
      out[k as string] = value();
      skip();
      if (src[i] === ',') i++;
      else if (src[i] !== '}') fail("expected ',' or '}'");
    }
  }
  const v = value();
  skip();
  if (i < src.length) fail('trailing text');
  return v;
}
