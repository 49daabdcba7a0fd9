// The commands as functions: upload a finished folder, watch a folder while a camera writes into
// it, and verify what the destination holds.
//
//   node examples/upload-watch-verify.mjs [DIR]      (DIR: a working folder; default a new temporary one)
//
// The frames are raw files (uint16, 32 × 40, no header: the layout is given as dtype and shape);
// .npy and TIFF files carry their own. Prints one JSON line.
import { mkdirSync, mkdtempSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { upload, verify, watch } from 'fur';

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'fur-example-'));
const SHAPE = [32, 40];
const layout = { dtype: 'uint16', shape: SHAPE, pattern: '*.raw' };

function frame(i) {
  const f = new Uint16Array(SHAPE[0] * SHAPE[1]);
  for (let p = 0; p < f.length; p++) f[p] = (1000 * i + p) % 65536;
  return f;
}
const fileName = (i) => `frame_${String(i).padStart(4, '0')}.raw`;

// 1. a finished run: 20 frame files, uploaded into one HDF5 file, then compared frame by frame
const run = join(dir, 'run42');
mkdirSync(run, { recursive: true });
for (let i = 0; i < 20; i++) writeFileSync(join(run, fileName(i)), frame(i));
const uploaded = await upload(run, `file://${join(dir, 'run42.h5')}`, layout);
const checked = await verify(run, `file://${join(dir, 'run42.h5')}`, layout);

// 2. a capture in progress: the camera writes each frame under a temporary name and renames it
// into place; fur stores each as it appears, deletes it once committed, and ends at the stop file
const camera = join(dir, 'camera');
mkdirSync(camera, { recursive: true });
const watching = watch(camera, `file://${join(dir, 'run43.h5')}`, {
  ...layout, completion: 'rename', stopFile: 'capture.done', deleteSource: true, batch: 5,
});
for (let i = 0; i < 15; i++) {
  writeFileSync(join(camera, `${fileName(i)}.tmp`), frame(i));
  renameSync(join(camera, `${fileName(i)}.tmp`), join(camera, fileName(i)));
  await sleep(20);
}
writeFileSync(join(camera, 'capture.done'), '');
const watched = await watching;
// the sources are gone: the destination is checked against the SHA-256 recorded for each frame
const selfChecked = await verify(undefined, `file://${join(dir, 'run43.h5')}`);

const summary = {
  dir,
  upload: { frames: uploaded.frames, files: uploaded.files, kept: uploaded.kept.length },
  verify: { equal: checked.equal, different: checked.different.length, missing: checked.missing.length },
  watch: { frames: watched.frames, endReason: watched.endReason, leftInCamera: readdirSync(camera).filter((n) => n.endsWith('.raw')).length },
  verifyWatched: { equal: selfChecked.equal, different: selfChecked.different.length },
};
console.log(JSON.stringify(summary));
if (checked.equal !== 20 || selfChecked.equal !== 15) process.exit(1);
