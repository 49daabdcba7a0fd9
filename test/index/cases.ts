/** Files for the chunk-index tests: every typed dataset fur writes, with their expected bytes. */
import { H5File, MemorySink, type DatasetOptions } from '../../src/hdf5/index.js';

export interface IndexCase { path: string; opts: DatasetOptions; rows: Uint8Array; count: number }

function bytesOf(a: ArrayBufferView): Uint8Array { return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice(); }

export function cases(): IndexCase[] {
  const u16 = Uint16Array.from({ length: 23 * 16 * 20 }, (_, i) => (i * 7919) & 0xffff);
  const f32 = Float32Array.from({ length: 37 * 5 }, (_, i) => Math.sin(i) * 1000);
  const i8 = Int8Array.from({ length: 50 }, (_, i) => i - 25);
  const be = new Uint8Array(9 * 4);
  const dv = new DataView(be.buffer);
  for (let i = 0; i < 9; i++) dv.setInt32(i * 4, -100000 * i + 7, false);
  const f64 = Float64Array.from({ length: 12 * 3 }, (_, i) => i / 3);
  const s8 = new Uint8Array(6 * 8);
  ['alpha', 'beta', 'gamma', 'delta', 'eps', 'zeta'].forEach((s, i) => s8.set(Buffer.from(s), i * 8));
  return [
    { path: '/data', count: 23, rows: bytesOf(u16), opts: { dtype: 'uint16', shape: [0, 16, 20], maxshape: [null, 16, 20], chunks: [4, 8, 10], filters: [{ id: 'shuffle' }, { id: 'deflate', level: 5 }, { id: 'fletcher32' }] } },
    { path: '/g/floats', count: 37, rows: bytesOf(f32), opts: { dtype: 'float32', shape: [0, 5], maxshape: [null, 5], chunks: [8, 5], filters: [{ id: 'deflate', level: 1 }] } },
    { path: '/g/h/small', count: 50, rows: bytesOf(i8), opts: { dtype: 'int8', shape: [50] } },
    { path: '/g/big_endian', count: 9, rows: be, opts: { dtype: '>i4', shape: [0], maxshape: [null], chunks: [4] } },
    { path: '/doubles', count: 12, rows: bytesOf(f64), opts: { dtype: 'float64', shape: [12, 3], chunks: [5, 3], filters: [{ id: 'shuffle' }] } },
    { path: '/labels', count: 6, rows: s8, opts: { dtype: 'S8', shape: [6] } },
  ];
}

/** Write all cases (and a vlen dataset zarr cannot express) into one file, in a few commits. */
export async function writeCases(): Promise<Uint8Array> {
  const sink = new MemorySink();
  const f = await H5File.create(sink);
  f.setAttr('/', 'title', 'index test');
  for (const c of cases()) {
    const ds = f.createDataset(c.path, c.opts);
    const rowBytes = c.rows.length / c.count;
    const half = Math.floor(c.count / 2);
    if (c.opts.maxshape) {
      await ds.append(c.rows.subarray(0, half * rowBytes), half);
      await f.commit();
      await ds.append(c.rows.subarray(half * rowBytes), c.count - half);
    } else await ds.write(c.rows);
  }
  const names = f.createDataset('/frame_name', { dtype: 'vlen-str', shape: [0], maxshape: [null], chunks: [16] });
  await names.appendVlen(['a', 'b']);
  f.setAttr('/data', 'units', 'counts');
  await f.close();
  return sink.bytes();
}
