/**
 * What the FTPS and S3 interop tests share: cameras writing at their frame rate while the real
 * `fur` binary watches them, runs killed at random moments, and h5py (HDF5 1.10.8) hashing every
 * stored frame to compare with what the camera wrote.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cameraFileName, encodeFile, expectedFrame, runCamera, type CameraFormat } from '../../src/source/camera.js';
import type { Dtype } from '../../src/source/frame.js';
import { run } from '../../harness/run.js';
import { FUR_BIN, runKilledAfter } from '../pipeline/helpers.js';
import { type H5Frames } from './support/h5py.js';

export interface Cam { format: CameraFormat; dtype: 'uint8'; shape: number[]; frames: number; fps: number; seed: number }

/** 434×434×3 uint8 TIFF frames (565 KB), as the microscope camera */
export const TIFF = (frames: number, fps: number, seed: number): Cam => ({ format: 'tiff', dtype: 'uint8', shape: [434, 434, 3], frames, fps, seed });
/** JPEG-like blobs of 124-247 KB, 185 KB on average, as the embedded camera */
export const JPEG = (frames: number, fps: number, seed: number): Cam => ({ format: 'jpeg', dtype: 'uint8', shape: [500, 494], frames, fps, seed });

const frameDtype = (c: Cam): Dtype => (c.format === 'jpeg' ? 'bytes' : c.dtype);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
export const pattern = (c: Cam): string => (c.format === 'jpeg' ? 'frame*.jpg' : 'frame*.tif');

/** The bytes of camera file i (one frame per file), as the camera wrote it. */
export function cameraFile(c: Cam, i: number): Uint8Array {
  return encodeFile(c.format, c.dtype, c.shape, [expectedFrame(c.seed, i, frameDtype(c), c.shape)]);
}

/** The files hold exactly the camera's frames, in order, once each. */
export function assertFrames(files: H5Frames[], c: Cam): void {
  const names = files.flatMap((f) => f.names);
  const hashes = files.flatMap((f) => f.hashes);
  assert.equal(hashes.length, c.frames, 'frames stored');
  assert.deepEqual(names, Array.from({ length: c.frames }, (_, i) => cameraFileName(i + 1, c.format)), '/frame_name: every frame once, in order');
  const want = Array.from({ length: c.frames }, (_, i) => sha(expectedFrame(c.seed, i, frameDtype(c), c.shape)));
  const wrong = hashes.map((h, i) => (h === want[i] ? -1 : i)).filter((i) => i >= 0);
  assert.deepEqual(wrong, [], `frames that differ from the camera's: ${wrong.slice(0, 10).join(', ')}`);
  for (const f of files) {
    if (c.format === 'jpeg') assert.equal(f.vlenBase, '|u1', 'binary layout: vlen uint8');
    else { assert.equal(f.dtype, '|u1'); assert.deepEqual(f.shape.slice(1), c.shape); assert.deepEqual(f.maxshape, [null, ...c.shape]); }
  }
}

/** Stored files (method files) are the camera's files byte for byte. */
export function assertFiles(names: string[], read: (name: string) => Uint8Array, c: Cam): void {
  assert.deepEqual(names, Array.from({ length: c.frames }, (_, i) => cameraFileName(i + 1, c.format)));
  names.forEach((n, i) => assert.equal(sha(read(n)), sha(cameraFile(c, i)), n));
}

/** `fur watch CAMERA DEST --delete-source …` while the camera writes at its rate. */
export async function watchWhileCapturing(work: string, c: Cam, dest: string, method: string, extra: string[], env: NodeJS.ProcessEnv = {}): Promise<{ cam: string; stderr: string; seconds: number }> {
  const cam = mkdtempSync(join(work, 'camera-'));
  const started = performance.now();
  const fur = run(process.execPath, [FUR_BIN, 'watch', cam, dest, '--method', method, '--delete-source', '--pattern', pattern(c),
    '--completion', 'rename', '--stop-file', 'capture.done', ...extra], { timeoutMs: 300_000, env: { ...process.env, ...env } });
  const camera = await runCamera({ dir: cam, format: c.format, dtype: c.dtype, shape: c.shape, frames: c.frames, fps: c.fps, seed: c.seed, write: 'rename', stopFile: 'capture.done' });
  const r = await fur;
  const seconds = (performance.now() - started) / 1000;
  assert.equal(camera.frames, c.frames);
  assert.equal(r.code, 0, `fur watch exited ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}:\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`fur: ${c.frames.toLocaleString('en-US')} frames from ${c.frames.toLocaleString('en-US')} files, .* \\[stop-file\\]`));
  assert.deepEqual(readdirSync(cam).filter((n) => n !== 'capture.done'), [], 'every source deleted once committed');
  return { cam, stderr: r.stderr, seconds };
}

/**
 * Run fur `times` times, each killed (SIGKILL) at a random moment inside the run — after a random
 * number of commits in `afterCommits`, plus 0-100 ms so the kill lands anywhere in the next batch
 * — then once to the end. Kills follow fur's own progress (its --json events), not the clock, so
 * a fast or a loaded machine kills mid-run alike. Returns where each kill landed.
 */
export async function killedThenFinished(args: string[], times: number, afterCommits: [number, number], env: NodeJS.ProcessEnv = {}): Promise<{ kills: string[]; killed: number; stderr: string }> {
  const kills: string[] = [];
  let killed = 0;
  for (let k = 0; k < times; k++) {
    const commits = afterCommits[0] + Math.floor(Math.random() * (afterCommits[1] - afterCommits[0] + 1));
    const delayMs = Math.floor(Math.random() * 100);
    if ((await runKilledAfter(args, commits, { delayMs, env })).killed) killed++;
    kills.push(`${commits} commits + ${delayMs} ms`);
  }
  const r = await run(process.execPath, [FUR_BIN, ...args], { timeoutMs: 300_000, env: { ...process.env, ...env } });
  assert.equal(r.code, 0, `the run after the kills exited ${r.code ?? r.signal}:\n${r.stderr}`);
  return { kills, killed, stderr: r.stderr };
}
