/**
 * `fur demo`: fur's main job end to end on one machine, with nothing to set up. A simulated
 * camera writes TIFF frames at a realistic rate into a temporary folder; `watch` uploads them to an
 * in-process SFTP server (over real SSH, host key checked) and deletes each local file once
 * committed; then every stored frame is compared with what the camera wrote.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { H5File } from '../hdf5/index.js';
import { framesPath, siblingPath } from '../pipeline/layout.js';
import { DEFAULTS } from '../pipeline/options.js';
import { Progress } from '../pipeline/progress.js';
import { run } from '../pipeline/run.js';
import { expectedFrame, runCamera } from '../source/camera.js';
import type { NumericDtype } from '../source/frame.js';
import { decodeTiff } from '../source/readers/tiff.js';
import { startSftpServer } from '../demo/sftp-server.js';
import { connect } from './connect.js';
import { renderer } from './render.js';
import { plural } from './status-line.js';

export interface DemoOptions {
  frames: number;
  fps: number;
  shape: number[];
  dtype: NumericDtype;
  method: 'append' | 'batches' | 'files';
  keep: boolean;
  json: boolean;
}

const SEED = 7;

export async function demo(o: DemoOptions): Promise<number> {
  const base = await mkdtemp(join(tmpdir(), 'fur-demo-'));
  const camDir = join(base, 'camera');
  const remoteDir = join(base, 'server');
  await Promise.all([import('node:fs/promises').then((f) => f.mkdir(camDir)), import('node:fs/promises').then((f) => f.mkdir(remoteDir))]);
  const knownHosts = join(base, 'known_hosts');
  await writeFile(knownHosts, '');
  const password = randomBytes(12).toString('hex');
  process.env.FUR_DEMO_PASSWORD = password;
  const server = await startSftpServer({ root: remoteDir, password, username: 'demo' });
  const say = (s: string) => { if (!o.json) process.stderr.write(s + '\n'); };
  say(`fur demo: camera → ${camDir}`);
  say(`fur demo: SFTP server on 127.0.0.1:${server.port} serving ${remoteDir}`);
  const url = o.method === 'append' ? server.url('demo', '/run1.h5') : server.url('demo', '/run1');
  const flags = { passwordEnv: 'FUR_DEMO_PASSWORD', knownHosts, acceptNewHostKey: true };
  let code: number;
  // Ctrl-C: the camera stops, what it wrote is committed, and the folders go (or are kept with
  // --keep); a second Ctrl-C ends at once, removing them first or saying where they are
  const stop = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts === 1) {
      process.stderr.write('\nfur demo: stopping the camera and finishing what is queued (press Ctrl-C again to quit now)\n');
      stop.abort();
      return;
    }
    if (!o.keep) {
      try {
        rmSync(base, { recursive: true, force: true });
        process.stderr.write(`fur demo: interrupted; removed ${base}\n`);
      } catch (e) {
        process.stderr.write(`fur demo: interrupted; could not remove ${base} (${(e as Error).message}): remove it yourself\n`);
      }
    } else process.stderr.write(`fur demo: interrupted; the demo's files are in ${base}\n`);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const camera = runCamera({ dir: camDir, frames: o.frames, format: 'tiff', dtype: o.dtype, shape: o.shape, fps: o.fps, seed: SEED, write: 'rename', stopFile: 'capture.done', signal: stop.signal });
    const { dest, path } = await connect(url, o.method, flags);
    const out = renderer({ json: o.json, tty: process.stderr.isTTY ?? false });
    let summary;
    try {
      summary = await run({
        sourceDir: camDir, pattern: 'frame*.tif', watch: { completion: 'rename', stopFile: 'capture.done' },
        dest, destPath: path, progress: new Progress(out.emit, { watch: true, deleteSource: true }), signal: stop.signal,
        options: { ...DEFAULTS, method: o.method, batchFrames: Math.max(1, Math.round(o.fps)), batchSeconds: 2, deleteSource: true },
      });
    } finally {
      out.end();
      await dest.close();
    }
    await camera;
    // check against what the camera wrote, independently of the pipeline's bookkeeping
    const left = (await readdir(camDir)).filter((n) => n.startsWith('frame'));
    const equal = await storedEqual(url, o, flags, say, remoteDir);
    // stopped early by Ctrl-C: what the camera wrote, all of it committed and checked, is a success
    const written = stop.signal.aborted ? summary.frames : o.frames;
    const ok = equal === written && left.length === 0 && summary.frames === written;
    const result = { type: 'demo', ok, frames: written, verified: equal, localFilesLeft: left.length, seconds: summary.seconds, mbPerSec: summary.bytes / 1e6 / Math.max(summary.seconds, 1e-3), interrupted: stop.signal.aborted };
    if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
    else say(`fur demo: ${ok ? 'OK' : 'FAILED'} — ${equal}/${written} frames verified equal to the camera's, ${plural(left.length, 'local file')} left, ${result.mbPerSec.toFixed(1)} MB/s`);
    code = ok ? (stop.signal.aborted ? 130 : 0) : 3;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await server.close();
    if (o.keep) say(`fur demo: kept ${base} (remove it when done)`);
    else {
      await rm(base, { recursive: true, force: true }).then(
        () => say(`fur demo: removed ${base}${stop.signal.aborted ? ' (interrupted)' : ''}; --keep keeps it`),
        (e) => say(`fur demo: could not remove ${base} (${(e as Error).message}): remove it yourself`));
    }
  }
  return code;
}

/**
 * Frames the destination holds equal to the camera's, each under its own source name (and, for
 * append, in capture order), read back over SFTP whatever the method.
 */
async function storedEqual(url: string, o: DemoOptions, flags: Parameters<typeof connect>[2], say: (s: string) => void, remoteDir: string): Promise<number> {
  const seen = new Set<string>();
  const matches = (name: string, frame: Uint8Array, row?: number): boolean => {
    const m = /^frame(\d+)\.tif$/.exec(name);
    if (!m || seen.has(name) || (row !== undefined && Number(m[1]) !== row + 1)) return false;
    const same = Buffer.compare(Buffer.from(frame), Buffer.from(expectedFrame(SEED, Number(m[1]) - 1, o.dtype, o.shape))) === 0;
    if (same) seen.add(name);
    return same;
  };
  let equal = 0;
  const { dest, path } = await connect(url, o.method, flags);
  try {
    if (o.method === 'files') {
      for (const name of await dest.list(path)) {
        const remote = await dest.openRead(posix.join(path, name));
        try {
          const block = decodeTiff(await remote.read(0, await remote.size()), name);
          if (block.count === 1 && matches(name, block.data)) equal++;
        } finally { await remote.close(); }
      }
      return equal;
    }
    const files = o.method === 'append' ? [path] : (await dest.list(path)).filter((n) => n.endsWith('.h5')).map((n) => posix.join(path, n));
    for (const p of files) {
      const file = await H5File.open(await dest.openRead(p));
      try {
        const frames = framesPath(file, '/data');
        const data = file.dataset(frames);
        const names = await file.dataset(siblingPath(frames, 'frame_name')).readVlen();
        // a chunk at a time: reading frame by frame would fetch each chunk once per frame in it
        const step = data.chunk?.[0] ?? 1;
        for (let start = 0; start < data.shape[0]; start += step) {
          const end = Math.min(data.shape[0], start + step);
          const block = await data.read(start, end);
          for (let i = start; i < end; i++) {
            const frame = block.subarray((i - start) * data.rowBytes, (i - start + 1) * data.rowBytes);
            if (matches(Buffer.from(names[i]).toString(), frame, o.method === 'append' ? i : undefined)) equal++;
          }
        }
        if (o.method === 'append') say(`fur demo: ${join(remoteDir, 'run1.h5')} holds /data of shape (${data.shape.join(', ')}) ${o.dtype}${o.keep ? ' (kept)' : ' (removed when the demo ends; --keep keeps it)'}`);
      } finally { await file.close(); }
    }
  } finally { await dest.close(); }
  return equal;
}
