/**
 * What the pipeline and CLI tests share: scratch folders, the two npm-tier destinations (the
 * in-process SFTP server over real SSH, and a file:// folder), running the CLI in this process or
 * as the real binary, and reading back what a run stored with h5wasm (HDF5 2.0), the oracle.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cameraFileName, encodeFile, expectedFrame, type CameraFormat } from '../../src/source/camera.js';
import { main as _main } from '../../src/cli/main.js';
import type { Dtype } from '../../src/source/frame.js';
import { readFrames, type ReadOptions } from '../../src/source/readers/index.js';
import { sortSequence } from '../../src/source/sequence.js';
import { formatKnownHostsLine } from '../../src/transport/known-hosts.js';
import { startSftpServer, type SftpServer, type SftpServerOptions } from '../../src/demo/sftp-server.js';
import { delayedLink } from '../transport/helpers.js';
import { dataset, h5wasmRead, resolvePath, valueBytes, valueStrings, valueVlenBytes, type H5Dataset, type H5Doc } from '../support/h5wasm.js';
import { run, type RunOptions, type RunResult } from '../../harness/run.js';
import { fakeSshDir } from '../transport/helpers.js';
import { FUR_BIN, REPO } from '../../harness/repo.js';

export type Method = 'append' | 'batches' | 'files';
export const METHODS: readonly Method[] = ['append', 'batches', 'files'];

export { FUR_BIN, REPO };

export async function scratch(t: { after: (fn: () => Promise<void>) => void }, prefix = 'fur-pipeline-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// The CLI reads the SSH password from a variable it is named; no agent may answer in its place.
export const PASSWORD_ENV = 'FUR_PIPELINE_TEST_PASSWORD';
export const PASSWORD = randomBytes(9).toString('hex');
process.env[PASSWORD_ENV] = PASSWORD;
delete process.env.SSH_AUTH_SOCK;

/**
 * Where a run uploads to. `local(method, name)` is the path on this machine where the stored
 * object lands (the SFTP server serves a local folder), so the oracle reads it in place.
 */
export interface Dest {
  kind: DestKind;
  /** folder whose content is the destination */
  root: string;
  /** the URL for `fur … <DEST>`: the HDF5 file for append, a folder otherwise */
  url(method: Method, name: string): string;
  local(method: Method, name: string): string;
  /** CLI flags that connect (password variable, known_hosts) */
  flags: string[];
  server?: SftpServer;
  close(): Promise<void>;
}

/**
 * sftp: the in-process server through the builtin SSH (a password); openssh: the same server
 * through fur's OpenSSH transport, with the stand-in `ssh` (test/transport/fake-ssh.ts) first on
 * PATH while the test runs; file: a local folder.
 */
export const DEST_KINDS = ['sftp', 'openssh', 'file'] as const;
export type DestKind = typeof DEST_KINDS[number];

function target(method: Method, name: string): string {
  return method === 'append' ? `${name}.h5` : name;
}

export async function openDest(kind: DestKind, t: { after: (fn: () => Promise<void>) => void }, server?: Partial<SftpServerOptions>): Promise<Dest> {
  const base = await scratch(t, `fur-dest-${kind}-`);
  const root = join(base, 'remote');
  await mkdir(root);
  if (kind === 'file') {
    return {
      kind, root, flags: [],
      url: (m, n) => pathToFileURL(join(root, target(m, n))).href,
      local: (m, n) => join(root, target(m, n)),
      close: async () => {},
    };
  }
  const srv = await startSftpServer({ root, password: PASSWORD, username: 'lab', ...server });
  const knownHosts = join(base, 'known_hosts');
  await writeFile(knownHosts, `${srv.hostKeyLine}\n`);
  if (kind === 'openssh') {
    // `fur` finds `ssh` on PATH (this process's, and the children's it starts)
    const bin = await fakeSshDir(await mkdtemp(join(base, 'bin-')), PASSWORD);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    t.after(async () => { process.env.PATH = path; });
  }
  const d: Dest = {
    kind, root, server: srv,
    flags: [...(kind === 'sftp' ? ['--password-env', PASSWORD_ENV] : []), '--known-hosts', knownHosts],
    url: (m, n) => srv.url('lab', `/${target(m, n)}`),
    local: (m, n) => join(root, target(m, n)),
    close: () => srv.close(),
  };
  t.after(() => d.close());
  return d;
}

export interface CliResult {
  code: number;
  stderr: string;
  /** the last line of stderr: where the CLI puts the error that ended a run */
  lastLine: string;
}

/**
 * `fur …` in this process, stderr captured. stdout is left alone (the test runner reports
 * through it): tests of stdout output run the real binary with `furBin`.
 */
export async function cli(args: string[]): Promise<CliResult> {
  const chunks: string[] = [];
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await _main(args);
  } finally {
    process.stderr.write = original;
  }
  const stderr = chunks.join('');
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  return { code, stderr, lastLine: lines[lines.length - 1] ?? '' };
}

/** The real binary, `node bin/fur.js …`, as a child process. */
export function furBin(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [FUR_BIN, ...args], { timeoutMs: 120_000, ...opts, env: { ...process.env, ...opts.env } });
}

/**
 * `fur … --json` as a child process, killed (SIGKILL) once it has reported `commits` commits —
 * `delayMs` later, if given, so the kill can land anywhere in the next batch; with `ready`, not
 * before that resolves too (fur has reached some other state). Kills follow fur's own progress,
 * not the clock: a fast or a loaded machine kills inside the run alike.
 */
export function runKilledAfter(args: string[], commits: number, opts: { delayMs?: number; env?: NodeJS.ProcessEnv; program?: string; ready?: Promise<unknown> } = {}): Promise<{ killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    // `program`: another program printing fur's progress events as JSON lines (a library user)
    const argv = opts.program ? [opts.program, ...args] : [FUR_BIN, ...args, '--json'];
    const child = spawn(process.execPath, argv, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = 0;
    let killing = false;
    let killed = false;
    let stderr = '';
    let partial = '';
    let timer: NodeJS.Timeout | undefined;
    const kill = () => { killed = true; child.kill('SIGKILL'); };
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      const lines = (partial + s).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        if (!l.includes('"type":"commit"') || ++seen < commits || killing) continue;
        killing = true;
        void Promise.resolve(opts.ready).then(() => {
          if (opts.delayMs) timer = setTimeout(kill, opts.delayMs);
          else kill();
        });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', reject);
    // killed: the run was still going when the kill came (it may have ended in the delay)
    child.on('close', (_code, signal) => { clearTimeout(timer); resolve({ killed: killed && signal === 'SIGKILL', stderr }); });
  });
}

/**
 * The SFTP destination `dest` reached over a long link (`oneWayMs` each way, see delayedLink): its
 * URL through the link, and the known_hosts file and flags that trust the server there.
 */
export async function slowSftp(dest: Dest, oneWayMs: number, t: { after: (fn: () => Promise<void>) => void }): Promise<{ url: (method: Method, name: string) => string; knownHosts: string; flags: string[] }> {
  const link = await delayedLink(dest.server!.port, oneWayMs);
  t.after(() => link.close());
  const knownHosts = join(dest.root, '..', `known_hosts_${link.port}`);
  await writeFile(knownHosts, `${formatKnownHostsLine('127.0.0.1', link.port, dest.server!.hostKey)}\n`);
  return {
    url: (m, n) => `sftp://lab@127.0.0.1:${link.port}/${target(m, n)}`,
    knownHosts,
    flags: ['--password-env', PASSWORD_ENV, '--known-hosts', knownHosts],
  };
}

/** `fur … --json` running as a child process, its events readable while it runs. */
export interface LiveFur {
  /** the events so far */
  events: Array<Record<string, unknown> & { type: string }>;
  /** resolves with the first event (so far or to come) that `match` accepts; fails if fur exits first */
  event(match: (e: Record<string, unknown> & { type: string }) => boolean, what: string): Promise<Record<string, unknown> & { type: string }>;
  /** the exit code and stderr once fur has ended */
  exited: Promise<{ code: number | null; stderr: string }>;
}

/** `fur … --json` as the real binary, followed event by event (the test acts on what fur reports, not on the clock). */
export function liveFur(args: string[], t: { after: (fn: () => Promise<void>) => void }): LiveFur {
  const child = spawn(process.execPath, [FUR_BIN, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: LiveFur['events'] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let stderr = '';
  let ended = false;
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    const lines = (partial + s).split('\n');
    partial = lines.pop()!;
    events.push(...jsonLines(lines.join('\n')));
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => {
    ended = true;
    for (const w of waiters) w();
    resolve({ code, stderr });
  }));
  t.after(async () => { if (!ended) child.kill('SIGKILL'); await exited; });
  const event: LiveFur['event'] = (match, what) => new Promise((resolve, reject) => {
    const check = () => {
      const e = events.find(match);
      if (e) { waiters.delete(check); resolve(e); } else if (ended) { waiters.delete(check); reject(new Error(`fur exited before ${what}: ${stderr}`)); }
    };
    waiters.add(check);
    check();
  });
  return { events, event, exited };
}

/** JSON lines of stdout, each checked to be one object with a `type`. */
export function jsonLines(stdout: Buffer | string): Array<Record<string, unknown> & { type: string }> {
  const text = stdout.toString();
  const lines = text.split('\n').filter((l) => l !== '');
  return lines.map((l, i) => {
    let o: unknown;
    try {
      o = JSON.parse(l);
    } catch {
      assert.fail(`stdout line ${i + 1} is not JSON: ${l}`);
    }
    assert.ok(o && typeof o === 'object' && !Array.isArray(o), `line ${i + 1} is not an object: ${l}`);
    assert.equal(typeof (o as { type?: unknown }).type, 'string', `line ${i + 1} has no type: ${l}`);
    return o as Record<string, unknown> & { type: string };
  });
}

/** numpy's name for a fur dtype, as the oracles report it. */
export function numpyDtype(d: Dtype): string {
  if (d === 'bytes') return '|O';
  const [kind, bits] = /^([a-z]+?)(\d+)$/.exec(d)!.slice(1) as [string, string];
  const size = Number(bits) / 8;
  const k = kind === 'float' ? 'f' : kind === 'uint' ? 'u' : 'i';
  return `${size === 1 ? '|' : '<'}${k}${size}`;
}

/** What a camera wrote, to compare a destination with. */
export interface Capture {
  format: CameraFormat;
  dtype: Dtype;
  shape: number[];
  seed: number;
  frames: number;
  framesPerFile?: number;
}

/** The frame dtype a capture stores as ('bytes' for JPEG). */
export function frameDtype(c: Capture): Dtype {
  return c.format === 'jpeg' ? 'bytes' : c.dtype;
}

/** Source file name of capture frame i. */
export function frameFile(c: Capture, i: number): string {
  return cameraFileName(Math.floor(i / (c.framesPerFile ?? 1)) + 1, c.format);
}

/** Frames as a destination holds them, in capture order, with the per-frame names. */
export interface Stored {
  frames: Uint8Array[];
  names: string[];
  pages: number[];
  /** the HDF5 files read (append: one; batches: one per batch; files: none) */
  docs: H5Doc[];
}

/** Rows of a frames dataset as separate frames. */
function framesOf(ds: H5Dataset): Uint8Array[] {
  if (ds.dtype === '|O') return valueVlenBytes(ds);
  const all = valueBytes(ds);
  const n = ds.shape![0]!;
  if (n === 0) return [];
  const size = all.length / n;
  return Array.from({ length: n }, (_, i) => all.subarray(i * size, (i + 1) * size));
}

/** One HDF5 file fur wrote, read by h5wasm: frames and per-frame datasets. */
export async function readH5(path: string, datasetPath = '/data'): Promise<Stored> {
  const doc = await h5wasmRead(path);
  const data = dataset(doc, datasetPath);
  // the per-frame datasets are beside the frames (in a NeXus file, /data links to /entry/data/data)
  const framesAt = resolvePath(doc, datasetPath);
  const dir = framesAt.slice(0, framesAt.lastIndexOf('/'));
  const names = valueStrings(dataset(doc, `${dir}/frame_name`));
  const pagesDs = dataset(doc, `${dir}/frame_page`);
  const pages = Array.from(new Uint32Array(valueBytes(pagesDs).slice().buffer));
  const frames = framesOf(data);
  assert.equal(names.length, frames.length, `${path}: one frame_name per frame`);
  assert.equal(pages.length, frames.length, `${path}: one frame_page per frame`);
  assert.equal(dataset(doc, `${dir}/frame_mtime`).shape![0], frames.length, `${path}: one frame_mtime per frame`);
  if (doc.objects[`${dir}/frame_sha256`]) {
    // the recorded hash of each frame is the hash of the frame as stored
    const hashes = valueBytes(dataset(doc, `${dir}/frame_sha256`));
    assert.equal(hashes.length, 32 * frames.length, `${path}: one SHA-256 per frame`);
    frames.forEach((f, i) => assert.ok(createHash('sha256').update(f).digest().equals(hashes.subarray(32 * i, 32 * i + 32)), `${path}: SHA-256 of frame ${i}`));
  }
  return { frames, names, pages, docs: [doc] };
}

/** Everything a run stored under `name` at the destination, read by the oracle for that method. */
export async function readStored(dest: Dest, method: Method, name: string, read: ReadOptions = {}): Promise<Stored> {
  const where = dest.local(method, name);
  if (method === 'append') return readH5(where);
  const entries = sortSequence((await readdir(where)).filter((n) => !n.startsWith('.')));
  const out: Stored = { frames: [], names: [], pages: [], docs: [] };
  if (method === 'batches') {
    // every batch file has its chunk-index sidecar beside it, and nothing else is there
    const sidecars = entries.filter((n) => n.endsWith('.h5.kerchunk.json'));
    const batchFiles = entries.filter((n) => !n.endsWith('.h5.kerchunk.json'));
    assert.deepEqual(sidecars, batchFiles.map((n) => `${n}.kerchunk.json`), `one sidecar per batch file in ${where}`);
    for (const n of batchFiles) {
      assert.match(n, /\.h5$/, `only finished batch files in ${where}`);
      const s = await readH5(join(where, n));
      out.frames.push(...s.frames);
      out.names.push(...s.names);
      out.pages.push(...s.pages);
      out.docs.push(...s.docs);
    }
    return out;
  }
  for (const n of entries) {
    const block = await readFrames(join(where, n), read);
    const size = block.dtype === 'bytes' ? block.data.length : block.data.length / block.count;
    for (let i = 0; i < block.count; i++) {
      out.frames.push(block.data.subarray(i * size, (i + 1) * size));
      out.names.push(n);
      out.pages.push(i);
    }
  }
  return out;
}

/** Asserts the destination holds frames [from, from + count) of the capture, each equal to what the camera wrote. */
export function assertCapture(stored: Stored, c: Capture, from = 0, count = c.frames - from): void {
  assert.equal(stored.frames.length, count, `frames stored (names: ${stored.names.slice(0, 3).join(', ')}…)`);
  const dtype = frameDtype(c);
  for (let k = 0; k < count; k++) {
    const i = from + k;
    assert.equal(stored.names[k], frameFile(c, i), `name of frame ${i}`);
    assert.equal(stored.pages[k], i % (c.framesPerFile ?? 1), `page of frame ${i}`);
    const want = expectedFrame(c.seed, i, dtype, c.shape);
    if (Buffer.compare(Buffer.from(stored.frames[k]!), Buffer.from(want)) !== 0) {
      assert.fail(`frame ${i} (${stored.names[k]}) differs from the camera's (${stored.frames[k]!.length} vs ${want.length} bytes)`);
    }
  }
}

/** Frame files (and markers) still in a camera folder; the stop file and temporaries are not frames. */
export async function localFrames(dir: string): Promise<string[]> {
  return sortSequence((await readdir(dir)).filter((n) => n.startsWith('frame') && !n.endsWith('.tmp')));
}

/** Common CLI flags for a watched camera that renames files into place and ends with a stop file. */
export function watchFlags(stopFile = 'capture.done'): string[] {
  return ['--completion', 'rename', '--stop-file', stopFile];
}

/** CLI flags that make readers accept a capture (raw needs its layout declared). */
export function readFlags(c: Capture): string[] {
  if (c.format === 'raw') return ['--dtype', c.dtype, '--shape', c.shape.join('x'), '--pattern', 'frame*.raw'];
  return ['--pattern', `frame*.${({ npy: 'npy', tiff: 'tif', jpeg: 'jpg' } as const)[c.format as 'npy' | 'tiff' | 'jpeg']}`];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds; fails after `ms` (a generous bound on an outcome, never a speed claim). */
export async function until(cond: () => boolean | Promise<boolean>, ms = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Writes capture frames [from, to) the way the camera does (one frame per file, renamed into
 * place), continuing its numbering — for a capture that goes on after a run ended.
 */
export async function writeFrames(dir: string, c: Capture, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const name = cameraFileName(i + 1, c.format);
    const bytes = encodeFile(c.format, c.dtype as never, c.shape, [expectedFrame(c.seed, i, frameDtype(c), c.shape)]);
    await writeFile(join(dir, `${name}.tmp`), bytes);
    await rename(join(dir, `${name}.tmp`), join(dir, name));
  }
}

/**
 * Flags that make a run give up soon after a transient failure (a full disk is retried like a
 * lost link when the CLI reconnects): one more attempt at most, since a zero limit is refused.
 */
export function noRetry(): string[] {
  return ['--give-up-after', '0.01'];
}
