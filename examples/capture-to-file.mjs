// Frames pushed from memory into one HDF5 file at a file:// destination, then read back.
//
//   node examples/capture-to-file.mjs [DIR]      (DIR: where run.h5 goes; default a new temporary folder)
//
// Reading back uses h5wasm (`npm install h5wasm`), which any HDF5 reader can replace (h5py:
// `h5py.File(path)['/entry/data/data']`). Prints one JSON line: what was stored and read back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import h5wasm from 'h5wasm/node';
import { openCapture } from 'fur';

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'fur-example-'));
const file = join(dir, 'run.h5');
const SHAPE = [64, 80];
const FRAMES = 25;

/** frame i: pixel p holds (1000 i + p) mod 65536 — what a camera SDK would hand over */
function frame(i) {
  const f = new Uint16Array(SHAPE[0] * SHAPE[1]);
  for (let p = 0; p < f.length; p++) f[p] = (1000 * i + p) % 65536;
  return f;
}

const capture = await openCapture(`file://${file}`, { method: 'append', dtype: 'uint16', shape: SHAPE });
let commits = 0;
capture.on('progress', (e) => { if (e.type === 'commit') commits++; });
for (let i = 0; i < FRAMES; i++) {
  // resolves at once while fur has room; later when commits lag behind (memory stays bounded)
  await capture.append(frame(i), { name: `frame_${String(i).padStart(6, '0')}`, attrs: { exposure_ms: 10 } });
}
const summary = await capture.close(); // every frame committed (written and fsync'ed)

// read back: the frames are /entry/data/data (and /data, a link to it), their names beside them
await h5wasm.ready;
const h5 = new h5wasm.File(file, 'r');
const data = h5.get('/entry/data/data');
const names = h5.get('/entry/data/frame_name').value;
const stored = data.value; // all frames, C order
const frameSize = SHAPE[0] * SHAPE[1];
let equal = 0;
for (let i = 0; i < data.shape[0]; i++) {
  const sent = frame(i);
  if (stored.subarray(i * frameSize, (i + 1) * frameSize).every((v, p) => v === sent[p])) equal++;
}
h5.close();

console.log(JSON.stringify({ file, frames: summary.frames, bytes: summary.bytes, commits, shape: data.shape, equal, names: [names[0], names.at(-1)] }));
if (equal !== FRAMES) process.exit(1);
