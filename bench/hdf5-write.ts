/**
 * fur's HDF5 writer against `cp`: 1 GiB of uint8 camera frames (1,900 × 434×434×3) written to a
 * local file through FileDestination, no filters, next to `cp` of a file holding the same bytes.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/hdf5-write.js [runs]
 *
 * Two targets, each measured in alternating runs (the order flips every run; ≥ 5 runs each):
 *   - tmpfs (/dev/shm), no sync: memory to memory, where any CPU overhead of the writer shows;
 *   - the disk under bench/data (ext4 here), with fsync included for both: fur closes with
 *     `close({ sync: true })`, cp is followed by `sync <file>` (an fsync of that file).
 * Page cache, fairly: cp's source file lives on the same file system as its target, written and
 * read once before the first run, so both sides read their frames from memory (fur from a pool
 * of 100 distinct frames in the process, cp from the cached source); before every run the
 * previous targets are deleted and, for the disk, `sync` runs so no earlier dirty pages are
 * flushed inside a timed run. fur's time runs from opening the destination file to the end of
 * close(); cp's is the wall time of the process (and of `sync <file>`).
 *
 * fur writes into its default chunks of 7 frames (4 MiB), committing every 100 frames (the
 * pipeline's default batch; 19 commits, partial chunks completed in place), in two ways:
 *   - "batches": each batch of 100 frames appended at once, as one contiguous buffer (whole
 *     chunks go straight from it to the file);
 *   - "frame by frame": each frame appended on its own, as the pipeline does with one frame per
 *     source file (every frame is copied into the chunk being gathered).
 * The three (two fur, one cp) run in rotating order. Results: one JSON line on stdout and
 * bench/results/hdf5-write.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { H5File, MemorySink } from '../src/hdf5/index.js';
import { FileDestination } from '../src/transport/file.js';
import { median } from './stats.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const RESULTS = join(REPO, 'bench', 'results', 'hdf5-write.json');
const FRAME = [434, 434, 3];
const FRAME_BYTES = FRAME[0]! * FRAME[1]! * FRAME[2]!; // 565,068
const FRAMES = 1900; // 1,073,629,200 bytes: 1 GiB to within 0.01 %
const POOL = 100;
const BATCH = 100;
const RUNS = Math.max(5, Number(process.argv[2] ?? 7));

interface Target { name: string; dir: string; sync: boolean }

/** 100 distinct frames, back to back; frame k of the capture is pool frame k % 100 */
function framePool(): Uint8Array {
  const pool = new Uint8Array(POOL * FRAME_BYTES);
  let x = 0x12345678;
  for (let i = 0; i < pool.length; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    pool[i] = x; pool[i + 1] = x >>> 8; pool[i + 2] = x >>> 16; pool[i + 3] = x >>> 24;
  }
  return pool;
}

/** cp's source: the same 1,900 frames as one file, on the target's file system, then read once */
function writeSource(path: string, pool: Uint8Array): void {
  if (!existsSync(path) || statSync(path).size !== FRAMES * FRAME_BYTES) {
    const fd = openSync(path, 'w');
    for (let k = 0; k < FRAMES; k += POOL) writeSync(fd, pool, 0, Math.min(POOL, FRAMES - k) * FRAME_BYTES);
    closeSync(fd);
  }
  execFileSync('cat', [path], { stdio: ['ignore', 'ignore', 'inherit'] }); // into the page cache
}

async function furRun(t: Target, pool: Uint8Array, frameByFrame: boolean): Promise<number> {
  const t0 = process.hrtime.bigint();
  const dest = await FileDestination.open(t.dir);
  const sink = await dest.openWrite('fur.h5', { truncate: true });
  const f = await H5File.create(sink);
  const ds = f.createDataset('/data', { dtype: 'uint8', shape: [0, ...FRAME], maxshape: [null, ...FRAME] });
  for (let k = 0; k < FRAMES; k += BATCH) {
    const n = Math.min(BATCH, FRAMES - k);
    if (frameByFrame) {
      for (let j = k; j < k + n; j++) await ds.append(pool.subarray((j % POOL) * FRAME_BYTES, (j % POOL + 1) * FRAME_BYTES), 1);
    } else {
      const at = (k % POOL) * FRAME_BYTES; // BATCH divides POOL: a batch is one slice of the pool
      await ds.append(pool.subarray(at, at + n * FRAME_BYTES), n);
    }
    await f.commit();
  }
  await f.close({ sync: t.sync });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function cpRun(t: Target): number {
  const src = join(t.dir, 'source.bin');
  const dst = join(t.dir, 'cp.bin');
  const t0 = process.hrtime.bigint();
  const r = spawnSync('cp', [src, dst], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cp exited ${r.status}`);
  if (t.sync) {
    const s = spawnSync('sync', [dst], { stdio: 'inherit' });
    if (s.status !== 0) throw new Error(`sync exited ${s.status}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function clean(t: Target): void {
  rmSync(join(t.dir, 'fur.h5'), { force: true });
  rmSync(join(t.dir, 'cp.bin'), { force: true });
  if (t.sync) execFileSync('sync');
}

/** outside the timing: the file fur wrote holds every frame, in order */
async function verify(t: Target, pool: Uint8Array): Promise<{ fileBytes: number; eof: number }> {
  const path = join(t.dir, 'fur.h5');
  const bytes = new Uint8Array(readFileSync(path));
  const sink = new MemorySink();
  await sink.write(0, bytes);
  const f = await H5File.open(sink);
  const ds = f.dataset('/data');
  if (ds.shape[0] !== FRAMES) throw new Error(`fur wrote ${ds.shape[0]} frames`);
  for (const k of [0, 1, 6, 7, 24, 25, 99, 100, 1234, FRAMES - 1]) {
    const got = await ds.read(k, k + 1);
    const want = pool.subarray((k % POOL) * FRAME_BYTES, (k % POOL + 1) * FRAME_BYTES);
    if (Buffer.compare(Buffer.from(got), Buffer.from(want)) !== 0) throw new Error(`frame ${k} differs`);
  }
  const eof = Number(Buffer.from(bytes).readBigUInt64LE(28));
  return { fileBytes: bytes.length, eof };
}

async function main(): Promise<void> {
  const pool = framePool();
  const disk = join(REPO, 'bench', 'data', 'hdf5-write');
  const shm = '/dev/shm/fur-bench-hdf5-write';
  mkdirSync(disk, { recursive: true });
  mkdirSync(shm, { recursive: true });
  const targets: Target[] = [
    { name: 'tmpfs, no sync', dir: shm, sync: false },
    { name: 'disk, fsync included', dir: disk, sync: true },
  ];
  const bytes = FRAMES * FRAME_BYTES;
  const results = [];
  const loadBefore = loadavg().map((x) => +x.toFixed(2));
  try {
    for (const t of targets) {
      writeSource(join(t.dir, 'source.bin'), pool);
      clean(t);
      // one untimed round of each, to settle allocations and caches, and to check fur's files
      await furRun(t, pool, false);
      const check = await verify(t, pool);
      clean(t);
      await furRun(t, pool, true);
      await verify(t, pool);
      clean(t);
      cpRun(t);
      clean(t);
      const times: Record<'batches' | 'frames' | 'cp', number[]> = { batches: [], frames: [], cp: [] };
      const kinds = ['batches', 'frames', 'cp'] as const;
      for (let i = 0; i < RUNS; i++) {
        for (let j = 0; j < kinds.length; j++) {
          const which = kinds[(i + j) % kinds.length]!; // rotate: no entry always follows the same one
          clean(t);
          times[which].push(which === 'cp' ? cpRun(t) : await furRun(t, pool, which === 'frames'));
          process.stderr.write(`${t.name}: run ${i + 1} ${which} ${times[which].at(-1)!.toFixed(3)} s\n`);
        }
      }
      clean(t);
      const stat = (xs: number[]) => ({ seconds: xs.map((s) => +s.toFixed(4)), median: +median(xs).toFixed(4), MBps: +(bytes / median(xs) / 1e6).toFixed(1) });
      const mc = median(times.cp);
      results.push({
        target: t.name,
        furBatches: stat(times.batches),
        furFrameByFrame: stat(times.frames),
        cp: stat(times.cp),
        // fur's throughput over cp's (medians)
        ratioBatches: +(mc / median(times.batches)).toFixed(3),
        ratioFrameByFrame: +(mc / median(times.frames)).toFixed(3),
        furFile: { bytes: check.fileBytes, eof: check.eof, overheadBytes: check.eof - bytes },
      });
    }
  } finally {
    rmSync(shm, { recursive: true, force: true });
  }
  const out = {
    bench: 'hdf5-write',
    frames: FRAMES, frameShape: FRAME, dtype: 'uint8', bytes, batch: BATCH, commits: Math.ceil(FRAMES / BATCH), runs: RUNS,
    results,
    // other work on the machine shows here (the runs alternate, so it hits all entries alike)
    loadavg: { before: loadBefore, after: loadavg().map((x) => +x.toFixed(2)) },
    env: { node: process.version, kernel: release(), cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), cp: execFileSync('cp', ['--version']).toString().split('\n')[0] },
    date: new Date().toISOString(),
  };
  const line = JSON.stringify(out);
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(RESULTS, line + '\n');
  console.log(line);
}

await main();
