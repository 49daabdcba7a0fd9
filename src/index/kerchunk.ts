/**
 * A chunk index beside each HDF5 file, in the kerchunk reference format (version 1): zarr v2
 * metadata for every dataset plus, for every chunk, [url, offset, length] into the HDF5 file. A
 * cloud reader (fsspec's reference file system, xarray, zarrita) then reads chunks with plain
 * range requests, without parsing HDF5. Variable-length datasets cannot be expressed as zarr
 * arrays; they are listed under `fur_unreferenced` in the root attributes. Small datasets kept in
 * their HDF5 header (a NeXus file's start and end times) are inlined. Axes are named after the
 * dimension scales HDF5 attaches (DIMENSION_LIST); a scale that is only a dimension (netCDF's
 * convention) is not an array. Soft links, which zarr cannot express, are listed under `fur_links`.
 */
import type { Datatype, H5File } from '../hdf5/index.js';
import type { Filter } from '../hdf5/index.js';

export interface References {
  version: 1;
  refs: Record<string, string | [string, number, number]>;
}

function zarrDtype(t: Datatype): string | undefined {
  switch (t.class) {
    case 'int': return `${t.size === 1 ? '|' : t.bigEndian ? '>' : '<'}${t.signed ? 'i' : 'u'}${t.size}`;
    case 'float': return `${t.bigEndian ? '>' : '<'}f${t.size}`;
    case 'string': return `|S${t.size}`;
    default: return undefined;
  }
}

/**
 * HDF5's pipeline as zarr codecs. A trailing Fletcher-32 is dropped by referencing each chunk
 * without its 4 checksum bytes; one in the middle of the pipeline needs numcodecs' fletcher32.
 */
function codecs(filters: Filter[], elementSize: number): { filters: object[] | null; compressor: object | null; trim: number } {
  let list = [...filters];
  let trim = 0;
  if (list.length && list[list.length - 1].id === 'fletcher32') { list = list.slice(0, -1); trim = 4; }
  const zarr = list.filter((f) => f.id !== 'bitshuffle-lz4').map((f) => f.id === 'shuffle' ? { id: 'shuffle', elementsize: elementSize }
    : f.id === 'deflate' ? { id: 'zlib', level: f.level } : { id: 'fletcher32' });
  const last = zarr[zarr.length - 1] as { id: string } | undefined;
  if (last && last.id === 'zlib') return { filters: zarr.length > 1 ? zarr.slice(0, -1) : null, compressor: last, trim };
  return { filters: zarr.length ? zarr : null, compressor: null, trim };
}

/**
 * zarr's fill value; null without a user-defined HDF5 fill value, because xarray reads a zarr
 * fill value as a missing-data marker and would hide real zeros.
 */
function fillOf(t: Datatype, fill?: Uint8Array): number | string | null {
  if (!fill) return null;
  const v = new DataView(fill.buffer, fill.byteOffset, fill.byteLength);
  if (t.class === 'float') return t.size === 8 ? v.getFloat64(0, !t.bigEndian) : t.size === 4 ? v.getFloat32(0, !t.bigEndian) : null;
  if (t.class === 'int') {
    if (t.size === 8) return Number(t.signed ? v.getBigInt64(0, !t.bigEndian) : v.getBigUint64(0, !t.bigEndian));
    const le = !t.bigEndian;
    return t.size === 1 ? (t.signed ? v.getInt8(0) : v.getUint8(0)) : t.size === 2 ? (t.signed ? v.getInt16(0, le) : v.getUint16(0, le)) : (t.signed ? v.getInt32(0, le) : v.getUint32(0, le));
  }
  return null;
}

/** dimension-scale bookkeeping: HDF5's own, expressed in zarr by _ARRAY_DIMENSIONS */
const SCALE_ATTRIBUTES = new Set(['DIMENSION_LIST', 'REFERENCE_LIST', 'NAME']);
const DIMENSION_ONLY = 'This is a netCDF dimension but not a netCDF variable';

async function attrsJson(file: H5File, path: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const a of file.attributes(path)) {
    if (SCALE_ATTRIBUTES.has(a.name)) continue;
    const v = await file.readAttribute(a);
    if (v !== undefined) out[a.name] = v;
  }
  return out;
}

/** a dataset's NAME when it is a dimension scale */
async function scaleName(file: H5File, path: string): Promise<string | undefined> {
  const a = file.attributes(path).find((x) => x.name === 'NAME');
  const v = a ? await file.readAttribute(a) : undefined;
  return typeof v === 'string' ? v : undefined;
}

/** the name of each axis from the scales attached to it (the scale dataset's name, as netCDF names dimensions) */
async function scaleDims(file: H5File, path: string): Promise<string[] | undefined> {
  const a = file.attributes(path).find((x) => x.name === 'DIMENSION_LIST');
  const lists = a ? await file.readAttribute(a) : undefined;
  if (!Array.isArray(lists) || lists.some((l) => !Array.isArray(l) || typeof l[l.length - 1] !== 'string')) return undefined;
  return (lists as string[][]).map((l) => l[l.length - 1]!.slice(l[l.length - 1]!.lastIndexOf('/') + 1));
}

/** References for every dataset of `file`, whose bytes will be found at `url`. */
export async function buildReferences(file: H5File, url: string): Promise<References> {
  const refs: References['refs'] = {};
  const unreferenced: string[] = [];
  // groups holding a fur frames dataset (marked by its fur_layout attribute) → number of frames
  const frameCounts = new Map<string, number>();
  for (const path of file.paths()) {
    if (file.isGroup(path) || !file.attributes(path).some((a) => a.name === 'fur_layout')) continue;
    frameCounts.set(path.slice(0, path.lastIndexOf('/')) || '/', file.dataset(path).shape[0]);
  }
  for (const path of file.paths()) {
    const key = path === '/' ? '' : path.slice(1) + '/';
    if (file.isGroup(path)) {
      refs[`${key}.zgroup`] = JSON.stringify({ zarr_format: 2 });
      refs[`${key}.zattrs`] = JSON.stringify(await attrsJson(file, path));
      continue;
    }
    const name = path.slice(path.lastIndexOf('/') + 1);
    const compact = file.compact(path);
    if (compact) {
      const dtype = zarrDtype(compact.type);
      if (!dtype) { unreferenced.push(path); continue; }
      // the value is in the header: inlined, as one chunk
      refs[`${key}.zarray`] = JSON.stringify({ zarr_format: 2, shape: compact.shape, chunks: compact.shape, dtype, order: 'C', fill_value: null, compressor: null, filters: null });
      refs[`${key}.zattrs`] = JSON.stringify({ ...(await attrsJson(file, path)), _ARRAY_DIMENSIONS: compact.shape.map((_, i) => `${name}_dim${i}`) });
      refs[`${key}${compact.shape.map(() => '0').join('.') || '0'}`] = `base64:${Buffer.from(compact.data).toString('base64')}`;
      continue;
    }
    if ((await scaleName(file, path))?.startsWith(DIMENSION_ONLY)) continue; // a dimension, not a variable
    const ds = file.dataset(path);
    const dtype = zarrDtype(ds.type);
    // chunks in bitshuffle's HDF5 framing: no zarr codec reads them as stored
    if (!dtype || ds.filters.some((f) => f.id === 'bitshuffle-lz4')) { unreferenced.push(path); continue; }
    const chunks = ds.chunk ?? ds.shape;
    const c = codecs(ds.filters, ds.type.size);
    refs[`${key}.zarray`] = JSON.stringify({
      zarr_format: 2, shape: ds.shape, chunks, dtype, order: 'C',
      fill_value: fillOf(ds.type, ds.fill), compressor: c.compressor, filters: c.filters,
    });
    // the frame axis is shared by the frames and their per-frame datasets; other axes are private
    const group = path.slice(0, path.lastIndexOf('/')) || '/';
    const frames = frameCounts.get(group);
    const dims = (await scaleDims(file, path)) ?? (await scaleName(file, path) ? [name] : undefined)
      ?? ds.shape.map((n, i) => (i === 0 && frames === n ? 'frame' : `${name}_dim${i}`));
    refs[`${key}.zattrs`] = JSON.stringify({ ...(await attrsJson(file, path)), _ARRAY_DIMENSIONS: dims });
    for (const ref of await file.chunkRefs(path)) {
      const grid = ref.offset.map((o, i) => Math.floor(o / chunks[i]));
      if (ref.offset[0] >= ds.shape[0] && ds.shape[0] > 0) continue; // beyond the committed extent
      refs[`${key}${grid.join('.')}`] = [url, ref.address, ref.size - c.trim];
    }
  }
  // what zarr cannot express is named, not silently left out
  const links = Object.fromEntries(file.softLinks().map((l) => [l.path, l.target]));
  refs['.zattrs'] = JSON.stringify({ ...JSON.parse(refs['.zattrs'] as string), fur_unreferenced: unreferenced, ...(Object.keys(links).length ? { fur_links: links } : {}) });
  return { version: 1, refs };
}

export const SIDECAR_SUFFIX = '.kerchunk.json';
