/**
 * The system-package oracle: Debian's h5py 3.7 / HDF5 1.10.8 (python3-h5py) and h5dump
 * (hdf5-tools). Always Debian's /usr/bin/python3: the `python3` first on PATH may be
 * another interpreter without h5py.
 *
 * The Python scripts sit next to this file's source (tsc does not copy them to dist), so
 * they are found from the repository root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { H5Doc, ReadOptions } from '../../support/h5json.js';
import { run, runOk, type RunOptions } from '../../../harness/run.js';

export const PYTHON = '/usr/bin/python3';
export const H5DUMP = '/usr/bin/h5dump';

/** test/interop/support in the source tree, found from this module whether run from dist or source. */
export const SUPPORT_DIR: string = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'h5read.py'))) return here;
  let dir = here;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'test', 'interop', 'support');
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find test/interop/support above ${here}`);
    dir = up;
  }
})();

export const H5READ_PY = join(SUPPORT_DIR, 'h5read.py');
export const LIVE_READER_PY = join(SUPPORT_DIR, 'live_reader.py');

/** Environment for every HDF5 process we start: readers must never take (or wait on) file locks. */
export function h5env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, HDF5_USE_FILE_LOCKING: 'FALSE', PYTHONDONTWRITEBYTECODE: '1', ...extra };
}

/** Describes `file` as h5py/HDF5 1.10.8 sees it (see h5read.py); throws with Python's stderr if it cannot. */
export async function h5pyRead(file: string, opts: ReadOptions = {}): Promise<H5Doc> {
  const args = [H5READ_PY, resolve(file)];
  if (opts.swmr) args.push('--swmr');
  if (opts.dataset) args.push('--dataset', opts.dataset);
  if (opts.rows) args.push('--rows', `${opts.rows[0]}:${opts.rows[1]}`);
  if (opts.values === false) args.push('--no-values');
  const r = await run(PYTHON, args, { env: h5env(), timeoutMs: 300_000 });
  if (r.code !== 0) {
    throw new Error(`h5py could not read ${file} (exit ${r.code ?? r.signal}):\n${lastLines(r.stderr, 30)}`);
  }
  return JSON.parse(r.stdout.toString('utf8')) as H5Doc;
}

/**
 * Runs a Python program with Debian's interpreter (h5py, numpy and support/pattern.py
 * importable); `args` become sys.argv[1:]. Returns stdout; throws with stderr on failure.
 */
export async function python(code: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<string> {
  const r = await runOk(PYTHON, ['-c', code, ...args], { timeoutMs: 300_000, ...opts, env: h5env({ PYTHONPATH: SUPPORT_DIR, ...opts.env }) });
  return r.stdout.toString('utf8');
}

export interface H5DumpResult {
  /** `h5dump -H` output: the structure. */
  header: string;
  /** Full `h5dump` output, values included (absent when `values: false`). */
  dump?: string;
}

/**
 * Runs HDF5 1.10.8's h5dump over the file (header, then everything) and throws if it exits
 * non-zero or reports an error anywhere in its output — h5dump sometimes prints
 * "h5dump error" for one object and still walks on.
 */
export async function h5dumpCheck(file: string, opts: { values?: boolean; dataset?: string } = {}): Promise<H5DumpResult> {
  const target = opts.dataset ? ['-d', opts.dataset] : [];
  const once = async (args: string[]): Promise<string> => {
    const r = await run(H5DUMP, [...args, ...target, resolve(file)], { env: h5env(), timeoutMs: 300_000 });
    const out = r.stdout.toString('utf8');
    if (r.code !== 0 || /h5dump error/i.test(out) || /h5dump error/i.test(r.stderr)) {
      throw new Error(`h5dump ${args.join(' ')} ${file} failed (exit ${r.code ?? r.signal}):\n${lastLines(r.stderr + '\n' + out, 30)}`);
    }
    return out;
  };
  const header = await once(['-H']);
  if (opts.values === false) return { header };
  return { header, dump: await once([]) };
}

export interface LiveSummary {
  iterations: number;
  maxRowsSeen: number;
  /** Length at the last read, after the stop request; null if the file never opened. */
  finalRows: number | null;
  failures: number;
  /** Open/read errors counted instead of failing (with `tolerateErrors`). */
  errors: number;
  /** SWMR reads that differed while a fresh open of the file read the same rows right. */
  stale: number;
  /** The first failure/error messages. */
  samples: string[];
  opened: boolean;
  timedOut: boolean;
  seconds: number;
}

export interface LiveReaderOptions {
  file: string;
  dataset: string;
  seed: number;
  /** Open once with swmr=True and refresh (default); false reopens the file each iteration. */
  swmr?: boolean;
  /** With swmr, reopen each iteration anyway. */
  reopen?: boolean;
  /** Re-check every visible row each iteration instead of only new ones. */
  recheck?: boolean;
  tolerateErrors?: boolean;
  intervalSeconds?: number;
  /** The reader's own deadline (seconds, default 600). */
  timeoutSeconds?: number;
  stopFile?: string;
}

export interface LiveReader {
  /** Highest row count the reader has reported so far. */
  readonly rowsSeen: number;
  /** Resolves once the reader has seen at least `rows` rows; rejects on timeout or if it exits first. */
  waitForRows(rows: number, timeoutMs?: number): Promise<void>;
  /** Asks the reader to finish (it reads once more) and returns its summary. */
  stop(timeoutMs?: number): Promise<LiveSummary>;
  /** Kills it without a summary (cleanup after a failed test). */
  kill(): void;
  readonly process: ChildProcess;
}

/** Starts live_reader.py against a file that something else is writing. */
export function startLiveReader(o: LiveReaderOptions): LiveReader {
  const stopFile = o.stopFile ?? `${resolve(o.file)}.stop`;
  const args = [LIVE_READER_PY, resolve(o.file), o.dataset, '--expect-seed', String(o.seed), '--stop-file', stopFile];
  if (o.swmr ?? true) args.push('--swmr');
  if (o.reopen) args.push('--reopen');
  if (o.recheck) args.push('--recheck');
  if (o.tolerateErrors) args.push('--tolerate-errors');
  if (o.intervalSeconds !== undefined) args.push('--interval', String(o.intervalSeconds));
  if (o.timeoutSeconds !== undefined) args.push('--timeout', String(o.timeoutSeconds));
  const child = spawn(PYTHON, args, { env: h5env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let rowsSeen = 0;
  let exited = false;
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    const lines = (partial + s).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      const m = /^rows (\d+)$/.exec(l);
      if (m) rowsSeen = Math.max(rowsSeen, Number(m[1]));
    }
    for (const w of waiters) w();
  });
  const done = new Promise<number | null>((res) =>
    child.on('close', (code) => {
      exited = true;
      for (const w of waiters) w();
      res(code);
    }),
  );
  return {
    get rowsSeen() {
      return rowsSeen;
    },
    process: child,
    waitForRows(rows, timeoutMs = 60_000) {
      return new Promise((res, rej) => {
        const check = () => {
          if (rowsSeen >= rows) finish();
          else if (exited) finish(new Error(`live reader exited having seen ${rowsSeen} of ${rows} rows:\n${lastLines(stderr, 20)}`));
        };
        const timer = setTimeout(() => finish(new Error(`live reader saw ${rowsSeen} of ${rows} rows within ${timeoutMs} ms`)), timeoutMs);
        const finish = (e?: Error) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (e) rej(e);
          else res();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(timeoutMs = 120_000) {
      writeFileSync(stopFile, '');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        done,
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => {
            child.kill('SIGKILL');
            rej(new Error(`live reader did not stop within ${timeoutMs} ms:\n${lastLines(stderr, 20)}`));
          }, timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
      const line = stdout.trim().split('\n').pop() ?? '';
      if (!line.startsWith('{')) throw new Error(`live reader exited ${code} without a summary:\n${lastLines(stderr, 30)}`);
      return JSON.parse(line) as LiveSummary;
    },
    kill() {
      if (!exited) child.kill('SIGKILL');
    },
  };
}

function lastLines(s: string, n: number): string {
  return s.trim().split('\n').slice(-n).join('\n');
}

/** What h5py read from one of fur's files: the frames dataset's form, and every frame's SHA-256 with its source name and page. */
export interface H5Frames { shape: number[]; dtype: string; vlenBase: string | null; maxshape: (number | null)[]; chunks: number[] | null; names: string[]; pages: number[]; hashes: string[] }

const HASH = `
import sys, json, hashlib, h5py, numpy as np
out = []
for path in sys.argv[1:]:
    with h5py.File(path, 'r') as f:
        # /data, or in a NeXus file the link to /entry/data/data, beside which the per-frame datasets are
        link = f.get('/data', getlink=True)
        at = link.path if isinstance(link, h5py.SoftLink) else '/data'
        here = at[:at.rfind('/')]
        d = f[at]
        base = h5py.check_vlen_dtype(d.dtype)
        hashes = []
        step = d.chunks[0] if d.chunks else 64
        for s in range(0, d.shape[0], step):
            for x in d[s:s + step]:
                hashes.append(hashlib.sha256(np.ascontiguousarray(x, dtype=np.uint8 if base is not None else None).tobytes()).hexdigest())
        names = [n.decode() if isinstance(n, bytes) else n for n in f[here + '/frame_name'][:]]
        out.append({'shape': list(d.shape), 'dtype': d.dtype.str, 'vlenBase': None if base is None else base.str,
                    'maxshape': list(d.maxshape), 'chunks': list(d.chunks) if d.chunks else None, 'names': names, 'pages': [int(p) for p in f[here + '/frame_page'][:]], 'hashes': hashes})
print(json.dumps(out))
`;

/** h5py (HDF5 1.10) opens each file and hashes every frame, a chunk at a time. */
export async function h5pyFrames(paths: string[]): Promise<H5Frames[]> {
  return JSON.parse(await python(HASH, paths)) as H5Frames[];
}
