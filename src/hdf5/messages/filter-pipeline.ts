/** Filter pipeline message (0x000B), version 2: which filters each chunk went through, in order. */
import { ByteReader, ByteWriter } from '../bytes.js';
import { formatError } from '../errors.js';

export type Filter =
  | { id: 'shuffle' }
  | { id: 'deflate'; level: number }
  | { id: 'fletcher32' }
  /**
   * bitshuffle with LZ4 (HDF5 filter 32008, registered by the bitshuffle project): chunks arrive
   * filtered already (a detector's bslz4 frames) and are stored as they are; readers need the
   * filter's plugin
   */
  | { id: 'bitshuffle-lz4' };

const CODE = { deflate: 1, shuffle: 2, fletcher32: 3, 'bitshuffle-lz4': 32008 } as const;
const OPTIONAL = 1;
/** bitshuffle's parameter for LZ4 after the shuffle */
const BSHUF_LZ4 = 2;
const BSHUF_NAME = new TextEncoder().encode('bitshuffle\0');

export function encodeFilterPipeline(filters: Filter[], elementSize: number, w = new ByteWriter()): ByteWriter {
  w.u8(2).u8(filters.length);
  for (const f of filters) {
    w.u16(CODE[f.id]);
    if (f.id === 'bitshuffle-lz4') {
      // a filter outside HDF5's own range carries its name; mandatory: the bytes mean nothing without it.
      // Parameters as the filter reads them: [2] element size, [3] block size (0: the one in each
      // chunk's header), [4] the compression; [0] and [1] are the writer's versions
      w.u16(BSHUF_NAME.length).u16(0).u16(5);
      w.bytes(BSHUF_NAME);
      for (const v of [0, 0, elementSize, 0, BSHUF_LZ4]) w.u32(v);
      continue;
    }
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
    else if (id === CODE['bitshuffle-lz4'] && vals[4] === BSHUF_LZ4) out.push({ id: 'bitshuffle-lz4' });
    else throw formatError('filter pipeline', `filter ${id} is not one fur reads`);
  }
  return out;
}
