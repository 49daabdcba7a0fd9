/** Filter pipeline message (0x000B), version 2: which filters each chunk went through, in order. */
import { ByteReader, ByteWriter } from '../bytes.js';
import { formatError } from '../errors.js';

export type Filter =
  | { id: 'shuffle' }
  | { id: 'deflate'; level: number }
  | { id: 'fletcher32' };

const CODE = { deflate: 1, shuffle: 2, fletcher32: 3 } as const;
const OPTIONAL = 1;

export function encodeFilterPipeline(filters: Filter[], elementSize: number, w = new ByteWriter()): ByteWriter {
  w.u8(2).u8(filters.length);
  for (const f of filters) {
    w.u16(CODE[f.id]);
    // fletcher32 is mandatory (a checksum that can be skipped checks nothing); the others optional
    w.u16(f.id === 'fletcher32' ? 0 : OPTIONAL);
    if (f.id === 'deflate') w.u16(1).u32(f.level);
    else if (f.id === 'shuffle') w.u16(1).u32(elementSize);
    else w.u16(0);
  }
  return w;
}

export function decodeFilterPipeline(r: ByteReader): Filter[] {
  const version = r.u8();
  const n = r.u8();
  if (version === 1) r.skip(6);
  const out: Filter[] = [];
  for (let i = 0; i < n; i++) {
    const id = r.u16();
    const nameLen = version === 1 || id >= 256 ? r.u16() : 0;
    r.u16(); // flags
    const nvals = r.u16();
    if (nameLen) r.skip(version === 1 ? (nameLen + 7) & ~7 : nameLen);
    const vals: number[] = [];
    for (let j = 0; j < nvals; j++) vals.push(r.u32());
    if (version === 1 && nvals % 2) r.u32();
    if (id === 1) out.push({ id: 'deflate', level: vals[0] ?? 6 });
    else if (id === 2) out.push({ id: 'shuffle' });
    else if (id === 3) out.push({ id: 'fletcher32' });
    else throw formatError('filter pipeline', `filter ${id} is not one fur reads`);
  }
  return out;
}
