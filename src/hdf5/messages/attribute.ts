/** Attribute message (0x000C), version 3: a small named array stored in an object header. */
import { ByteReader, ByteWriter } from '../bytes.js';
import { decodeDatatype, encodeDatatype, type Datatype } from '../datatype.js';
import { decodeDataspace, encodeDataspace } from './dataspace.js';

export interface Attribute {
  name: string;
  type: Datatype;
  /** empty = scalar */
  shape: number[];
  /** element bytes as stored (vlen elements already point into a global heap) */
  data: Uint8Array;
  /**
   * The datatype as stored, for a type fur does not decode (an enum, an array, …: another
   * program's attribute on a file fur continues). Written back unchanged, so the attribute
   * survives when fur rewrites the header.
   */
  typeBytes?: Uint8Array;
}

export function encodeAttribute(a: Attribute, w = new ByteWriter()): ByteWriter {
  const name = Buffer.from(a.name + '\0', 'utf8');
  const dt = a.typeBytes ?? encodeDatatype(a.type).finish();
  const ds = encodeDataspace({ dims: a.shape }).finish();
  w.u8(3).u8(0).u16(name.length).u16(dt.length).u16(ds.length).u8(1);
  w.bytes(name).bytes(dt).bytes(ds).bytes(a.data);
  return w;
}

export function decodeAttribute(r: ByteReader, end: number): Attribute {
  const version = r.u8();
  r.u8();
  const nameLen = r.u16(); const dtLen = r.u16(); const dsLen = r.u16();
  if (version >= 3) r.u8();
  const pad = (n: number) => (version === 1 ? (n + 7) & ~7 : n);
  const name = Buffer.from(r.bytes(nameLen)).toString('utf8').replace(/\0+$/, '');
  r.skip(pad(nameLen) - nameLen);
  const dtStart = r.pos;
  let type: Datatype;
  let typeBytes: Uint8Array | undefined;
  try {
    type = decodeDatatype(r);
  } catch {
    typeBytes = r.buf.slice(dtStart, dtStart + dtLen);
    type = { class: 'unknown', size: new DataView(typeBytes.buffer).getUint32(4, true) };
  }
  r.pos = dtStart + pad(dtLen);
  const dsStart = r.pos;
  const { dims } = decodeDataspace(r);
  r.pos = dsStart + pad(dsLen);
  const count = dims.reduce((a, b) => a * b, 1);
  const a: Attribute = { name, type, shape: dims, data: r.bytes(Math.min(count * type.size, end - r.pos)).slice() };
  if (typeBytes) a.typeBytes = typeBytes;
  return a;
}
