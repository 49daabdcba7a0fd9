/**
 * Datatype message (0x0003): element types fur writes, with encoder and decoder.
 * Fixed-point and floating-point numbers (either byte order), fixed-length strings,
 * variable-length UTF-8 strings and variable-length byte sequences (whole files).
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
  | { class: 'string'; size: number; charset: 'ascii' | 'utf8' }
  | { class: 'vlen-str'; size: 16 }
  | { class: 'vlen-bytes'; size: 16 };

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
      // null-padded like numpy's fixed-width bytes; charset in bits 4-7
      w.u8((1 << 4) | 3).u8(1 | ((t.charset === 'utf8' ? 1 : 0) << 4)).u8(0).u8(0).u32(t.size);
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
    case 3:
      return { class: 'string', size, charset: ((b0 >> 4) & 0x0f) === 1 ? 'utf8' : 'ascii' };
    case 9: {
      decodeDatatype(r); // base type: unsigned char for both kinds fur writes
      return (b0 & 0x0f) === 1 ? { class: 'vlen-str', size: 16 } : { class: 'vlen-bytes', size: 16 };
    }
    default:
      throw formatError('datatype', `class ${cls} (${b1}) is not one fur writes`);
  }
}
