/**
 * The chunk filter pipeline: shuffle, deflate and Fletcher-32, applied in the declared order on
 * write and in reverse on read. Deflate runs in libuv's thread pool (node:zlib async), so
 * compression of several chunks proceeds in parallel with the event loop.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { fletcher32 } from './checksum.js';
import { FurError } from '../errors.js';
import { formatError } from './errors.js';
import type { Filter } from './messages/filter-pipeline.js';

const deflate = promisify(zlib.deflate);
const inflate = promisify(zlib.inflate);

export function shuffle(data: Uint8Array, size: number): Uint8Array {
  if (size <= 1) return data;
  const n = Math.floor(data.length / size);
  const out = new Uint8Array(data.length);
  for (let b = 0; b < size; b++) {
    const base = b * n;
    for (let i = 0, j = b; i < n; i++, j += size) out[base + i] = data[j];
  }
  out.set(data.subarray(n * size), n * size); // leftover bytes stay in place
  return out;
}

export function unshuffle(data: Uint8Array, size: number): Uint8Array {
  if (size <= 1) return data;
  const n = Math.floor(data.length / size);
  const out = new Uint8Array(data.length);
  for (let b = 0; b < size; b++) {
    const base = b * n;
    for (let i = 0, j = b; i < n; i++, j += size) out[j] = data[base + i];
  }
  out.set(data.subarray(n * size), n * size);
  return out;
}

function notFurs(filter: string, what: string): FurError<'filter-unsupported'> {
  return new FurError('filter-unsupported', `fur does not decode or encode ${filter} itself; ${what}`, { filter });
}

/** `data` and its checksum; in place when `room` says 4 bytes after `data` are the caller's to use */
function withChecksum(data: Uint8Array, room: boolean): Uint8Array {
  const out = room ? new Uint8Array(data.buffer, data.byteOffset, data.length + 4) : new Uint8Array(data.length + 4);
  if (!room) out.set(data);
  new DataView(out.buffer, out.byteOffset, out.length).setUint32(data.length, fletcher32(data), true);
  return out;
}

/**
 * Apply the filters in order. `room`: the 4 bytes after `data` in its buffer belong to the caller
 * and may take a Fletcher-32 that comes first (a chunk of a checksummed-only dataset is then not
 * copied: a chunk staged with room for its checksum).
 */
export async function encodeChunk(data: Uint8Array, filters: Filter[], elementSize: number, room = false): Promise<Uint8Array> {
  let cur = data;
  for (const f of filters) {
    if (f.id === 'bitshuffle-lz4') throw notFurs(f.id, 'chunks of this filter are stored as they arrive (Dataset.appendChunk)');
    if (f.id === 'shuffle') cur = shuffle(cur, elementSize);
    else if (f.id === 'deflate') cur = new Uint8Array(await deflate(cur, { level: f.level }));
    else cur = withChecksum(cur, room && cur === data && data.byteOffset + data.length + 4 <= data.buffer.byteLength);
  }
  return cur;
}

/**
 * Undo the filters of a stored chunk. `check: false` strips Fletcher-32 without checking it, so a
 * chunk whose checksum fails can still be compared frame by frame to find what changed.
 */
export async function decodeChunk(stored: Uint8Array, filters: Filter[], elementSize: number, where: string, check = true): Promise<Uint8Array> {
  let cur = stored;
  for (let i = filters.length - 1; i >= 0; i--) {
    const f = filters[i];
    if (f.id === 'bitshuffle-lz4') throw notFurs(f.id, `${where}: read it with HDF5 and the bitshuffle plugin (h5py with HDF5_PLUGIN_PATH, or hdf5plugin)`);
    if (f.id === 'shuffle') cur = unshuffle(cur, elementSize);
    else if (f.id === 'deflate') cur = new Uint8Array(await inflate(cur));
    else {
      const n = cur.length - 4;
      const stored32 = new DataView(cur.buffer, cur.byteOffset + n, 4).getUint32(0, true);
      if (n < 0) throw formatError(where, 'chunk shorter than its Fletcher-32 checksum');
      if (check && fletcher32(cur.subarray(0, n)) !== stored32) {
        throw new FurError('checksum-mismatch', `${where}: Fletcher-32 checksum mismatch: the chunk changed after it was written`, { where });
      }
      cur = cur.subarray(0, n);
    }
  }
  return cur;
}
