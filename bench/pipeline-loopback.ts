/**
 * Throughput of fur's three methods on loopback next to OpenSSH's own `sftp put` of the same bytes.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/pipeline-loopback.js [rounds]
 *
 * A private Debian OpenSSH server on 127.0.0.1 (harness/sshd.ts) receives, in
 * alternating rounds (order rotated each round): `sftp put` of the capture as one file, `sftp put -f`
 * (the same, fsynced at the end), `sftp put` and `sftp put -f` of the 1,800 individual files (-f:
 * each file fsynced, as fur's files method does before deleting a source), and `fur upload` with
 * --method append, batches and files. The capture is 1,800 frames of 434×434×3 uint8 written once
 * as TIFF files (~1 GB) into bench/data/. Every run is a fresh process; times are wall clock
 * around it (connect and start-up included, for sftp and fur alike), with the remote target
 * removed and the page cache flushed (`sync`) before each. Rates use the source bytes (the TIFF
 * files) for every entry, so they compare directly. Results: bench/results/pipeline-loopback.json.
 */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCamera } from '../src/source/camera.js';
import { sortSequence } from '../src/source/sequence.js';
import { startSshd, type Sshd } from '../harness/sshd.js';
import { run, runOk } from '../harness/run.js';
import { median } from './stats.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const FUR = join(REPO, 'bin', 'fur.js');
const DATA = join(REPO, 'bench', 'data', 'pipeline-loopback');
const FRAMES_DIR = join(DATA, 'frames');
const ONE_FILE = join(DATA, 'capture.bin');
const RESULTS = join(REPO, 'bench', 'results', 'pipeline-loopback.json');

const FRAMES = 1800;
const SHAPE = [434, 434, 3];
const SEED = 1;
const ROUNDS = Math.max(3, Number(process.argv[2] ?? 5));

interface Entry {
  name: string;
  /** runs one upload; returns fur's own report when there is one */
  go(remote: string): Promise<{ furSeconds?: number; furMBps?: number }>;
  /** checks what arrived (outside the timing) */
  check(remote: string): void;
}

async function prepare(): Promise<{ files: string[]; bytes: number }> {
  const marker = join(DATA, '.complete');
  if (!existsSync(marker)) {
    rmSync(DATA, { recursive: true, force: true });
    mkdirSync(FRAMES_DIR, { recursive: true });
    process.stderr.write(`writing ${FRAMES} frames of ${SHAPE.join('×')} uint8 as TIFF into ${FRAMES_DIR} …\n`);
    await runCamera({ dir: FRAMES_DIR, format: 'tiff', dtype: 'uint8', shape: SHAPE, frames: FRAMES, seed: SEED });
    const files = sortSequence(readdirSync(FRAMES_DIR)).map((n) => join(FRAMES_DIR, n));
    // the same bytes as one file, for `sftp put` of one file
    writeFileSync(ONE_FILE, '');
    for (const f of files) appendFileSync(ONE_FILE, readFileSync(f));
    writeFileSync(marker, '');
  }
  const files = sortSequence(readdirSync(FRAMES_DIR)).map((n) => join(FRAMES_DIR, n));
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  if (files.length !== FRAMES || statSync(ONE_FILE).size !== bytes) throw new Error(`${DATA} is incomplete; delete it and run again`);
  return { files, bytes };
}

function entries(sshd: Sshd): Entry[] {
  const url = (path: string) => `sftp://${sshd.user}@${sshd.host}:${sshd.port}${path}`;
  const sftp = (commands: string[]) => sshd.sftp(commands, { timeoutMs: 900_000 });
  const fur = (method: string) => async (remote: string) => {
    const r = await run(process.execPath, [FUR, 'upload', FRAMES_DIR, url(remote), '--method', method, '--pattern', 'frame*.tif',
      '--identity', sshd.identityFile, '--known-hosts', sshd.knownHostsFile, '--json'], { timeoutMs: 900_000 });
    if (r.code !== 0) throw new Error(`fur upload --method ${method} exited ${r.code}:\n${r.stderr}`);
    const done = r.stdout.toString().trim().split('\n').map((l) => JSON.parse(l) as { type: string; seconds?: number; mbPerSec?: number; frames?: number })
      .find((e) => e.type === 'done');
    if (done?.frames !== FRAMES) throw new Error(`fur upload --method ${method} stored ${done?.frames} frames`);
    return { furSeconds: done.seconds, furMBps: done.mbPerSec };
  };
  const size = (p: string) => statSync(p).size;
  const count = (dir: string, suffix: string) => readdirSync(dir).filter((n) => n.endsWith(suffix)).length;
  return [
    {
      name: 'sftp put (one file)',
      go: async (remote) => { await sftp([`put ${ONE_FILE} ${remote}`]); return {}; },
      check: (remote) => { if (size(remote) !== size(ONE_FILE)) throw new Error('sftp put: size differs'); },
    },
    {
      name: 'sftp put -f (one file, fsync)',
      go: async (remote) => { await sftp([`put -f ${ONE_FILE} ${remote}`]); return {}; },
      check: (remote) => { if (size(remote) !== size(ONE_FILE)) throw new Error('sftp put -f: size differs'); },
    },
    {
      name: 'sftp put (1,800 files)',
      go: async (remote) => { mkdirSync(remote); await sftp([`put ${FRAMES_DIR}/frame*.tif ${remote}/`]); return {}; },
      check: (remote) => { if (count(remote, '.tif') !== FRAMES) throw new Error('sftp put of files: count differs'); },
    },
    {
      name: 'sftp put -f (1,800 files)',
      go: async (remote) => { mkdirSync(remote); await sftp([`put -f ${FRAMES_DIR}/frame*.tif ${remote}/`]); return {}; },
      check: (remote) => { if (count(remote, '.tif') !== FRAMES) throw new Error('sftp put -f of files: count differs'); },
    },
    { name: 'fur append', go: fur('append'), check: (remote) => { if (size(remote) < FRAMES * 434 * 434 * 3) throw new Error('fur append: file too small'); } },
    { name: 'fur batches', go: fur('batches'), check: (remote) => { if (count(remote, '.h5') !== FRAMES / 100) throw new Error('fur batches: batch count'); } },
    { name: 'fur files', go: fur('files'), check: (remote) => { if (count(remote, '.tif') !== FRAMES) throw new Error('fur files: count differs'); } },
  ];
}

function targetFor(root: string, name: string): string {
  return join(root, name.startsWith('fur append') ? 'bench.h5' : name.replace(/[^a-z0-9]+/gi, '-'));
}

async function main(): Promise<void> {
  const { bytes } = await prepare();
  const frameBytes = FRAMES * SHAPE.reduce((a, b) => a * b, 1);
  const sshd = await startSshd({ logLevel: 'ERROR' });
  const list = entries(sshd);
  const runs: Array<{ round: number; name: string; seconds: number; mbPerSec: number; furSeconds?: number; furMBps?: number }> = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // rotate the order so no entry always follows the same one
      const order = list.map((_, i) => list[(i + round) % list.length]!);
      for (const e of order) {
        const remote = targetFor(sshd.root, e.name);
        rmSync(remote, { recursive: true, force: true });
        execFileSync('sync');
        const t0 = performance.now();
        const fur = await e.go(remote);
        const seconds = (performance.now() - t0) / 1000;
        e.check(remote);
        rmSync(remote, { recursive: true, force: true });
        const r = { round, name: e.name, seconds: Number(seconds.toFixed(3)), mbPerSec: Number((bytes / 1e6 / seconds).toFixed(1)), ...fur };
        runs.push(r);
        process.stderr.write(`round ${round + 1}/${ROUNDS}  ${e.name.padEnd(30)} ${seconds.toFixed(2).padStart(7)} s ${r.mbPerSec.toFixed(1).padStart(8)} MB/s\n`);
      }
    }
  } finally {
    await sshd.dispose();
  }

  const medianOf = (name: string) => median(runs.filter((r) => r.name === name).map((r) => r.seconds));
  const base = medianOf('sftp put (one file)');
  const baseFiles = medianOf('sftp put (1,800 files)');
  const summary = list.map((e) => {
    const s = medianOf(e.name);
    const furReported = runs.filter((r) => r.name === e.name && r.furMBps !== undefined).map((r) => r.furMBps!);
    return {
      name: e.name,
      medianSeconds: Number(s.toFixed(3)),
      medianMBps: Number((bytes / 1e6 / s).toFixed(1)),
      /** throughput relative to `sftp put` of one file (1 = as fast) */
      vsSftpPutOneFile: Number((base / s).toFixed(3)),
      vsSftpPutFiles: Number((baseFiles / s).toFixed(3)),
      ...(furReported.length ? { furReportedMedianMBps: Number(median(furReported).toFixed(1)) } : {}),
    };
  });
  const version = (cmd: string, args: string[]) => { try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim(); } catch (e) { return String((e as { stderr?: string }).stderr ?? e).trim(); } };
  const result = {
    bench: 'pipeline-loopback',
    date: new Date().toISOString(),
    commit: version('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGB: Math.round(totalmem() / 2 ** 30), node: process.version, openssh: (await runOk('/usr/bin/ssh', ['-V'])).stderr.trim() },
    capture: { frames: FRAMES, shape: SHAPE, dtype: 'uint8', format: 'tiff', sourceBytes: bytes, frameBytes },
    method: 'wall clock around each process (connect and start-up included), remote target removed and `sync` before each run; MB/s = source bytes / 1e6 / seconds; medians over alternating rounds with rotated order',
    notes: [
      'fur fsyncs before it counts anything committed (fsync@openssh.com): append and batches once per batch of 100 frames, files once per file; plain `sftp put` never fsyncs, `sftp put -f` fsyncs each file it puts',
      'fur append/batches store the frames (frameBytes) plus HDF5 metadata; the rates still use the source bytes so every entry shares one denominator',
    ],
    rounds: ROUNDS,
    summary,
    runs,
  };
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(RESULTS, JSON.stringify(result, null, 2) + '\n');

  process.stdout.write(`\n${FRAMES} frames ${SHAPE.join('×')} uint8, ${(bytes / 1e6).toFixed(0)} MB of TIFF files, OpenSSH on loopback, medians of ${ROUNDS} rounds\n\n`);
  process.stdout.write(`${'entry'.padEnd(32)}${'seconds'.padStart(9)}${'MB/s'.padStart(9)}${'× sftp put'.padStart(12)}${'× put files'.padStart(13)}\n`);
  for (const s of summary) {
    process.stdout.write(`${s.name.padEnd(32)}${s.medianSeconds.toFixed(2).padStart(9)}${s.medianMBps.toFixed(1).padStart(9)}${s.vsSftpPutOneFile.toFixed(2).padStart(12)}${s.vsSftpPutFiles.toFixed(2).padStart(13)}\n`);
  }
  process.stdout.write(`\nwritten to ${RESULTS}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
  process.exitCode = 1;
});
