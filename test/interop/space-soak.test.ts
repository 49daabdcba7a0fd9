/**
 * Kill -9 and resume, over and over (issue 15, "No wasted space"): `fur watch` with small batches
 * and default settings while a camera writes, and `fur upload` of a finished capture, each killed
 * with SIGKILL at random instants — during start-up, a batch, a commit, a resume — and started
 * again, against Debian's OpenSSH server and a file:// folder. Afterwards:
 *
 *  - every frame exactly once, in order: h5py (HDF5 1.10.8) reads them back equal to what the
 *    camera wrote (SHA-256 of every frame, a few byte for byte), names right, no temporary left;
 *  - the file within its data + metadata region + two chunks (test/support/space.ts), and
 *    h5stat (Debian's hdf5-tools) sees the file fur's reader accounts for.
 *
 * It prints, per lane, the file size / frame bytes ratio and h5stat's unaccounted space.
 * `FUR_SPACE_SOAK_SEED=S` replays a seed (the kill points; the machine's timing still varies).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { cameraFileName, encodeFile, expectedFrame, runCamera } from '../../src/source/camera.js';
import { dataset, valueBytes } from '../support/h5json.js';
import { run } from '../support/run.js';
import { spaceAccount } from '../support/space.js';
import { FUR_BIN } from '../pipeline/helpers.js';
import { FurProcess } from './support/faults/fur-process.js';
import { Rng } from './support/faults/rng.js';
import { h5pyFrames, h5pyRead } from './support/h5py.js';
import { startSshd, type Sshd } from './support/sshd.js';

const work = mkdtempSync(join(tmpdir(), 'fur-space-soak-'));
let sshd: Sshd;
before(async () => { sshd = await startSshd({ root: join(work, 'remote') }); });
after(async () => {
  await sshd?.dispose();
  rmSync(work, { recursive: true, force: true });
});

const SEED = Number(process.env.FUR_SPACE_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** kills per lane; each command runs in two lanes (OpenSSH, file://): 50 kills of each command */
const KILLS = 25;
const SHAPE = [48, 40];
const DTYPE = 'uint16';
const FRAME_BYTES = SHAPE[0]! * SHAPE[1]! * 2;
/** frames of the finished capture `upload` sends: more than the kills let through */
const UPLOAD_FRAMES = 500;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

type Command = 'watch' | 'upload';
type Kind = 'sftp' | 'file';

interface LaneReport {
  lane: string;
  kills: number;
  /** commits that ended inside a chunk of the frames dataset (its partial chunk written again) */
  partial: number;
  frames: number;
  size: number;
  unaccounted: number;
  dead: number;
  bound: number;
}

/**
 * Start fur; kill it once it has reported `commits` commits and `delayMs` more have passed (with
 * no commit to wait for, `delayMs` after it started), or when it has run `deadlineMs`. Resolves
 * whether the kill came while it ran.
 */
async function runAndKill(args: string[], commits: number, delayMs: number, deadlineMs: number): Promise<{ killed: boolean; code: number | null; stdout: string; stderr: string }> {
  const p = new FurProcess(FUR_BIN, args);
  let timer: NodeJS.Timeout | undefined;
  const deadline = setTimeout(() => p.kill(), deadlineMs);
  const watch = setInterval(() => {
    const seen = p.stdout.split('\n').filter((l) => l.includes('"type":"commit"')).length;
    if (seen >= commits && !timer) timer = setTimeout(() => p.kill(), delayMs);
  }, 5);
  const exit = await p.exited;
  clearTimeout(deadline);
  clearInterval(watch);
  clearTimeout(timer);
  return { killed: exit.signal === 'SIGKILL', code: exit.code, stdout: exit.stdout, stderr: exit.stderr };
}

function h5statSummary(text: string): { metadata: number; raw: number; unaccounted: number; total: number } {
  const num = (label: string) => {
    const m = new RegExp(`${label}: (\\d+) bytes`).exec(text);
    assert.ok(m, `h5stat printed no "${label}":\n${text}`);
    return Number(m[1]);
  };
  return { metadata: num('File metadata'), raw: num('Raw data'), unaccounted: num('Unaccounted space'), total: num('Total space') };
}

async function soak(command: Command, kind: Kind, rng: Rng): Promise<LaneReport> {
  const lane = `${command} → ${kind === 'sftp' ? 'OpenSSH' : 'file://'}`;
  const cam = mkdtempSync(join(work, `camera-${command}-${kind}-`));
  const remoteDir = join(kind === 'sftp' ? sshd.root : join(work, 'local'), `${command}-${kind}`);
  mkdirSync(remoteDir, { recursive: true });
  const remote = join(remoteDir, 'run.h5');
  const url = kind === 'sftp' ? `sftp://${sshd.user}@${sshd.host}:${sshd.port}${remote}` : pathToFileURL(remote).href;
  const flags = kind === 'sftp' ? ['--identity', sshd.identityFile, '--known-hosts', sshd.knownHostsFile] : [];
  const seed = rng.int(1, 1e6);
  const args = command === 'watch'
    // small batches of 6 in chunks of 8, so three full batches in four end inside a chunk however
    // slow the machine (a backlog fills every batch), and more when a batch is cut by time;
    // every other setting default (Fletcher-32 on)
    ? ['watch', cam, url, '--delete-source', '--pattern', 'frame*.npy', '--completion', 'rename', '--stop-file', 'capture.done',
      '--batch', '6', '--batch-seconds', '0.15', '--chunk-frames', '8', '--json', ...flags]
    : ['upload', cam, url, '--delete-source', '--pattern', 'frame*.npy', '--batch', '3', '--chunk-frames', '8', '--json', ...flags];

  let camera: Promise<{ frames: number }> | undefined;
  const stopCamera = new AbortController();
  if (command === 'upload') {
    for (let i = 0; i < UPLOAD_FRAMES; i++) writeFileSync(join(cam, cameraFileName(i + 1, 'npy')), encodeFile('npy', DTYPE, SHAPE, [expectedFrame(seed, i, DTYPE, SHAPE)]));
  } else {
    camera = runCamera({ dir: cam, format: 'npy', dtype: DTYPE, shape: SHAPE, frames: 1_000_000, fps: 10, seed, write: 'rename', signal: stopCamera.signal });
  }

  let kills = 0;
  let partial = 0;
  const chunk = 8;
  const countPartial = (stdout: string) => {
    for (const l of stdout.split('\n')) {
      const m = /"type":"commit".*"totalFrames":(\d+)/.exec(l);
      if (m && Number(m[1]) % chunk !== 0) partial++;
    }
  };
  for (let attempt = 0; kills < KILLS; attempt++) {
    assert.ok(attempt < KILLS * 3, `${lane}: only ${kills} kills landed in ${attempt} starts`);
    // a kill before the first commit of a start (start-up, sweep, reopening), or a few commits in
    const commits = rng.chance(0.3) ? 0 : rng.int(1, 2);
    const delay = commits === 0 ? rng.int(50, 800) : rng.int(0, 200);
    const r = await runAndKill(args, commits, delay, 8000);
    countPartial(r.stdout);
    if (r.killed) { kills++; continue; }
    assert.equal(command, 'upload', `${lane}: fur watch ended by itself (${r.code}):\n${r.stderr}`);
    assert.fail(`${lane}: fur upload finished (${r.code}) after ${kills} kills; the capture needs more frames:\n${r.stderr}`);
  }

  // the end: the capture stops, and one last run finishes it
  if (camera) {
    stopCamera.abort();
    await camera;
    writeFileSync(join(cam, 'capture.done'), '');
  }

  const frames = camera ? (await camera).frames : UPLOAD_FRAMES;
  const last = await run(process.execPath, [FUR_BIN, ...args], { timeoutMs: 180_000 });
  assert.equal(last.code, 0, `${lane}: the last run exited ${last.code ?? last.signal}:\n${last.stderr}`);
  countPartial(last.stdout.toString());
  assert.ok(partial >= KILLS / 5, `${lane}: only ${partial} commits ended inside a chunk`);

  // every frame once, in order, equal to the camera's
  const [f] = await h5pyFrames([remote]);
  const names = Array.from({ length: frames }, (_, i) => cameraFileName(i + 1, 'npy'));
  assert.equal(f!.names.length, frames, `${lane}: frames stored`);
  assert.deepEqual(f!.names, names, `${lane}: /frame_name`);
  const want = names.map((_, i) => sha(expectedFrame(seed, i, DTYPE, SHAPE)));
  const wrong = f!.hashes.map((h, i) => (h === want[i] ? -1 : i)).filter((i) => i >= 0);
  assert.deepEqual(wrong, [], `${lane}: frames that differ from the camera's`);
  for (const i of [0, Math.floor(frames / 2), frames - 1]) {
    const doc = await h5pyRead(remote, { dataset: '/data', rows: [i, i + 1] });
    assert.ok(Buffer.from(valueBytes(dataset(doc, '/data'))).equals(Buffer.from(expectedFrame(seed, i, DTYPE, SHAPE))), `${lane}: frame ${i} by value`);
  }
  assert.deepEqual(readdirSync(cam).filter((n) => n !== 'capture.done'), [], `${lane}: local folder empty`);
  assert.deepEqual(readdirSync(remoteDir).filter((n) => n.endsWith('.fur-partial')), [], `${lane}: no temporary left`);

  // the space: data + metadata region + two chunks, and what h5stat makes of it
  const a = await spaceAccount(new Uint8Array(readFileSync(remote)));
  assert.ok(a.dead <= 2 * a.chunk, `${lane}: ${a.dead} bytes dead, more than two chunks (${2 * a.chunk}): ${JSON.stringify(a.gaps)}`);
  assert.ok(a.size <= a.bound, `${lane}: ${a.size} bytes > data ${a.data} + metadata region ${a.metaRegion} + two chunks ${2 * a.chunk}`);
  const stat = await run('/usr/bin/h5stat', ['-S', remote]);
  assert.equal(stat.code, 0, stat.stderr);
  const s = h5statSummary(stat.stdout.toString());
  assert.equal(s.total, a.size, `${lane}: h5stat's total space`);
  // h5stat's raw data is the chunks fur's reader finds and the compact values (the start and end
  // times); what it leaves unaccounted is the global heap collections, the metadata region's free
  // part and the dead bytes, no more
  assert.equal(s.raw, a.data - a.heaps + a.compact, `${lane}: h5stat's raw data`);
  assert.ok(s.unaccounted <= a.heaps + a.metaRegion + a.dead, `${lane}: h5stat unaccounted ${s.unaccounted} > heaps ${a.heaps} + metadata region ${a.metaRegion} + dead ${a.dead}`);
  return { lane, kills, partial, frames, size: a.size, unaccounted: s.unaccounted, dead: a.dead, bound: a.bound };
}

describe(`kill -9 and resume, ${KILLS} kills per lane (seed ${SEED})`, () => {
  const reports: LaneReport[] = [];
  after(() => {
    for (const r of reports) {
      const data = r.frames * FRAME_BYTES;
      process.stderr.write(`# ${r.lane}: ${r.kills} kills, ${r.partial} commits inside a chunk, ${r.frames} frames (${data} bytes of frames); file ${r.size} bytes, ratio ${(r.size / data).toFixed(3)}; `
        + `h5stat unaccounted ${r.unaccounted} bytes; dead ${r.dead} bytes (bound ${r.bound})\n`);
    }
  });
  for (const command of ['watch', 'upload'] as const) {
    test(`fur ${command}: killed ${KILLS} times over OpenSSH and ${KILLS} times to file://, every frame once, within data + metadata region + two chunks`, async () => {
      const results = await Promise.all((['sftp', 'file'] as const).map((kind, i) => soak(command, kind, Rng.forRun(SEED, (command === 'watch' ? 0 : 2) + i))));
      reports.push(...results);
    });
  }
});
