/**
 * Datatype message (0x0003): element types fur writes, with encoder and decoder.
 * Fixed-point and floating-point numbers (either byte order), fixed-length strings,
 * variable-length UTF-8 strings and variable-length byte sequences (whole files); for
 * attributes only, object references, sequences of them and compounds (dimension scales).
 */
import { ByteReader, ByteWriter } from './bytes.js';
import { formatError, usageError } from './errors.js';

export type NumericName =
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'float16' | 'float32' | 'float64';

export type Datatype =
  | { class: 'int'; size: 1 | 2 | 4 | 8; signed: boolean; bigEndian: boolean }
  | { class: 'float'; size: 2 | 4 | 8; bigEndian: boolean }
  /** `nullterm`: padded with NULs after a terminating NUL (what libhdf5's own CLASS and NAME attributes use); default NUL-padded like numpy */
  | { class: 'string'; size: number; charset: 'ascii' | 'utf8'; nullterm?: boolean }
  | { class: 'vlen-str'; size: 16 }
  | { class: 'vlen-bytes'; size: 16 }
  /** an object reference: the address of an object header */
  | { class: 'reference'; size: 8 }
  /** a variable-length sequence of object references (DIMENSION_LIST) */
  | { class: 'vlen-ref'; size: 16 }
  | { class: 'compound'; size: number; members: { name: string; offset: number; type: Datatype }[] }
  /** a type fur does not decode (its bytes travel with the attribute that has it) */
  | { class: 'unknown'; size: number };

/** What callers may pass: a numpy-style name ('uint16', '>f4', 'vlen-str', 'S12') or a Datatype. */
export type DtypeSpec = NumericName | 'vlen-str' | 'vlen-bytes' | string | Datatype;

const NUMERIC: Record<string, Datatype> = {
  int8: { class: 'int', size: 1, signed: true, bigEndian: false },
  int16: { class: 'int', size: 2, signed: true, bigEndian: false },
  int32: { class: 'int', size: 4, signed: true, bigEndian: false },
  int64: { class: 'int', size: 8, signed: true, bigEndian: false },
  uint8: { class: 'int', size: 1, signed: false, bigEndian: false },
  uint16: { class: 'int', size: 2, signed: false, bigEndian: false },
  uint32: { class: 'int', size: 4, signed: false, bigEndian: false },
  uint64: { class: 'int', size: 8, signed: false, bigEndian: false },
  float16: { class: 'float', size: 2, bigEndian: false },
  float32: { class: 'float', size: 4, bigEndian: false },
  float64: { class: 'float', size: 8, bigEndian: false },
};
const NUMPY_CODE: Record<string, string> = {
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64', u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
  f2: 'float16', f4: 'float32', f8: 'float64',
};

export function parseDtype(spec: DtypeSpec): Datatype {
  if (typeof spec !== 'string') return spec;
  if (spec in NUMERIC) return { ...NUMERIC[spec] } as Datatype;
  if (spec === 'vlen-str') return { class: 'vlen-str', size: 16 };
  if (spec === 'vlen-bytes' || spec === 'bytes') return { class: 'vlen-bytes', size: 16 };
  const np = /^([<>|=]?)([iuf][1248])$/.exec(spec);
  if (np && NUMPY_CODE[np[2]]) {
    const base = { ...NUMERIC[NUMPY_CODE[np[2]]] } as Datatype;
    if (np[1] === '>' && (base.class === 'int' || base.class === 'float')) base.bigEndian = true;
    return base;
  }
  const fixed = /^(S|U8:)(\d+)$/.exec(spec);
  if (fixed && Number(fixed[2]) > 0) {
    return { class: 'string', size: Number(fixed[2]), charset: fixed[1] === 'S' ? 'ascii' : 'utf8' };
  }
  throw usageError('dtype', `unknown dtype '${spec}' (use int8…uint64, float16/32/64, S<n>, U8:<n>, vlen-str, vlen-bytes)`);
}

export function dtypeName(t: Datatype): string {
  switch (t.class) {
    case 'int': return `${t.bigEndian ? '>' : ''}${t.signed ? 'int' : 'uint'}${t.size * 8}`;
    case 'float': return `${t.bigEndian ? '>' : ''}float${t.size * 8}`;
    case 'string': return t.charset === 'ascii' ? `S${t.size}` : `U8:${t.size}`;
    default: return t.class;
  }
}

export function isVlen(t: Datatype): boolean { return t.class === 'vlen-str' || t.class === 'vlen-bytes'; }

const UCHAR: Datatype = { class: 'int', size: 1, signed: false, bigEndian: false };
const OBJECT_REF: Datatype = { class: 'reference', size: 8 };

export function encodeDatatype(t: Datatype, w = new ByteWriter()): ByteWriter {
  switch (t.class) {
    case 'int': {
      const bits0 = (t.bigEndian ? 1 : 0) | (t.signed ? 0x08 : 0);
      w.u8((1 << 4) | 0).u8(bits0).u8(0).u8(0).u32(t.size);
      w.u16(0).u16(t.size * 8);
      return w;
    }
    case 'float': {
      // IEEE layouts: [sign bit, exponent location/size, mantissa size, bias]
      const [sign, expLoc, expSize, mantSize, bias] =
        t.size === 2 ? [15, 10, 5, 10, 15] : t.size === 4 ? [31, 23, 8, 23, 127] : [63, 52, 11, 52, 1023];
      // bits 4-5 = 2: mantissa normalization "most significant bit implied"
      w.u8((1 << 4) | 1).u8((t.bigEndian ? 1 : 0) | 0x20).u8(sign).u8(0).u32(t.size);
      w.u16(0).u16(t.size * 8).u8(expLoc).u8(expSize).u8(0).u8(mantSize).u32(bias);
      return w;
    }
    case 'string': {
      // padding in bits 0-3 (0 NUL-terminated, 1 NUL-padded like numpy's fixed-width bytes); charset in bits 4-7
      w.u8((1 << 4) | 3).u8((t.nullterm ? 0 : 1) | ((t.charset === 'utf8' ? 1 : 0) << 4)).u8(0).u8(0).u32(t.size);
      return w;
    }
    case 'vlen-str': {
      // type 1 = string, padding 0 (null terminate), charset 1 = UTF-8 (bits 8-11)
      w.u8((1 << 4) | 9).u8(1).u8(1).u8(0).u32(16);
      return encodeDatatype(UCHAR, w);
    }
    case 'vlen-bytes': {
      w.u8((1 << 4) | 9).u8(0).u8(0).u8(0).u32(16);
      return encodeDatatype(UCHAR, w);
    }
    case 'reference':
      // type 0 in bits 0-3: an object reference (the version 1 encoding every libhdf5 reads)
      return w.u8((1 << 4) | 7).u8(0).u8(0).u8(0).u32(8);
    case 'vlen-ref': {
      w.u8((1 << 4) | 9).u8(0).u8(0).u8(0).u32(16);
      return encodeDatatype(OBJECT_REF, w);
    }
    case 'compound': {
      // version 3: names without padding, offsets in as few bytes as the element size needs
      const n = t.members.length;
      w.u8((3 << 4) | 6).u8(n & 0xff).u8(n >> 8).u8(0).u32(t.size);
      const width = offsetWidth(t.size);
      for (const m of t.members) {
        w.bytes(Buffer.from(m.name + '\0', 'utf8'));
        for (let i = 0; i < width; i++) w.u8(Math.floor(m.offset / 256 ** i) & 0xff);
        encodeDatatype(m.type, w);
      }
      return w;
    }
    case 'unknown':
      throw formatError('datatype', 'a type fur does not decode cannot be written anew');
  }
}

export function decodeDatatype(r: ByteReader): Datatype {
  const cv = r.u8();
  const cls = cv & 0x0f;
  const b0 = r.u8(); const b1 = r.u8(); r.u8();
  const size = r.u32();
  switch (cls) {
    case 0: {
      r.u16(); r.u16();
      if (![1, 2, 4, 8].includes(size)) throw formatError('datatype', `integer of ${size} bytes`);
      return { class: 'int', size: size as 1 | 2 | 4 | 8, signed: (b0 & 0x08) !== 0, bigEndian: (b0 & 1) !== 0 };
    }
    case 1: {
      r.skip(12);
      if (![2, 4, 8].includes(size)) throw formatError('datatype', `float of ${size} bytes`);
      return { class: 'float', size: size as 2 | 4 | 8, bigEndian: (b0 & 1) !== 0 };
    }
    case 3: {
      const t: Datatype = { class: 'string', size, charset: ((b0 >> 4) & 0x0f) === 1 ? 'utf8' : 'ascii' };
      if ((b0 & 0x0f) === 0) t.nullterm = true;
      return t;
    }
    case 6:
      return decodeCompound(r, cv >> 4, b0 | (b1 << 8), size);
    case 7:
      if ((b0 & 0x0f) !== 0 || size !== 8) throw formatError('datatype', 'a reference other than an object reference');
      return { class: 'reference', size: 8 };
    case 9: {
      const base = decodeDatatype(r); // unsigned char for the kinds fur writes as data
      if ((b0 & 0x0f) === 1) return { class: 'vlen-str', size: 16 };
      return base.class === 'reference' ? { class: 'vlen-ref', size: 16 } : { class: 'vlen-bytes', size: 16 };
    }
    default:
      throw formatError('datatype', `class ${cls} (${b1}) is not one fur writes`);
  }
}

function decodeCompound(r: ByteReader, version: number, n: number, size: number): Datatype {
  const members: { name: string; offset: number; type: Datatype }[] = [];
  const width = offsetWidth(size);
  for (let i = 0; i < n; i++) {
    const start = r.pos;
    let end = start;
    while (r.u8() !== 0) end++;
    const name = Buffer.from(r.buf.subarray(start, end)).toString('utf8');
    if (version < 3) r.pos = start + ((end - start + 8) & ~7);
    let offset = 0;
    if (version < 3) offset = r.u32();
    else for (let b = 0; b < width; b++) offset += r.u8() * 256 ** b;
    if (version === 1) r.skip(28); // dimensionality, permutation, reserved, four dimension sizes
    members.push({ name, offset, type: decodeDatatype(r) });
  }
  return { class: 'compound', size, members };
}

/** bytes of a version 3 compound member's offset: as few as the element size needs */
function offsetWidth(size: number): number {
  return size < 256 ? 1 : size < 65536 ? 2 : size < 2 ** 24 ? 3 : 4;
}
