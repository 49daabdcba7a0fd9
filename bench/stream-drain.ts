/**
 * How fast `fur stream` drains a detector stream into a local HDF5 file, next to an h5py
 * filewriter receiving the same stream in the same run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/stream-drain.js [--rounds 2] [--frames 1000] [--shape 1024,1024] [--formats eiger,plain]
 *
 * One run: two python3-zmq senders (bench/stream_sender.py, Debian's python3-zmq), each binding a
 * PUSH socket on 127.0.0.1 and sending the same series (uint16 frames, EIGER stream v1 raw '<' or
 * the plain format) as fast as its receiver takes it; the receivers, started at once:
 * `fur stream tcp://… file://…/fur.h5 --json` with its defaults, and bench/h5py_filewriter.py
 * (Debian's h5py) storing each frame as one chunk of a resizable dataset with the same filters as
 * fur's file (checked after the run) and flushing + fsync'ing as often as fur commits. Once both
 * have connected, both senders are told to go at the same moment: the two receivers share the
 * machine's cores, as they would share a beamline's server.
 *
 * Measured per receiver: seconds from the sender's first message to the receiver's end (fur's
 * `series` line, printed once its file is closed; the writer's line after close and fsync), and
 * from it frames/s and MB/s (frame bytes / 1e6); CPU seconds (user + system) and peak RSS of the
 * receiver's process from GNU time (start-up included). A run counts only if h5py reads every
 * frame of both files back equal to what was sent. The 1-minute load average is sampled every
 * second: the cores are shared with other work.
 * Results: bench/results/stream-drain.md and .json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { frameChunks } from '../src/pipeline/layout.js';
import { DEFAULTS } from '../src/pipeline/options.js';
import { median } from './stats.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DATA = join(REPO, 'bench', 'data', 'stream-drain');
const RESULTS = join(REPO, 'bench', 'results', 'stream-drain');
const SENDER = join(REPO, 'bench', 'stream_sender.py');
const WRITER = join(REPO, 'bench', 'h5py_filewriter.py');
const FUR = join(REPO, 'bin', 'fur.js');
const PYTHON = '/usr/bin/python3';
/** fur's append commits at most 64 MiB of frames at a time (COMMIT_BYTES in src/pipeline/append.ts) */
const FUR_COMMIT_BYTES = 64 * 2 ** 20;

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    frames: { type: 'string', default: '1000' },
    shape: { type: 'string', default: '1024,1024' },
    formats: { type: 'string', default: 'eiger,plain' },
  },
});
const ROUNDS = Number(opts.rounds);
const FRAMES = Number(opts.frames);
const [ROWS, COLS] = opts.shape.split(',').map(Number) as [number, number];
const FORMATS = opts.formats.split(',');
const FRAME_BYTES = ROWS * COLS * 2;
/**
 * frames per chunk in fur's file: one for frames of 1 MiB and more (WHOLE_FRAME_CHUNK in
 * src/pipeline/append.ts), else its automatic chunking; checked against the file after each run
 */
const CHUNK_FRAMES = FRAME_BYTES >= 2 ** 20 ? 1 : frameChunks({ dtype: 'uint16', shape: [ROWS, COLS] }, DEFAULTS)[0]!;
const env = { ...process.env, HDF5_USE_FILE_LOCKING: 'FALSE', PYTHONDONTWRITEBYTECODE: '1' };
const log = (m: string) => process.stderr.write(`${m}\n`);

interface Receiver {
  seconds: number;
  framesPerSec: number;
  MBps: number;
  cpuSeconds: number;
  maxRssMB: number;
  /** what h5py read back */
  check: { shape: number[]; dtype: string; equal: boolean; chunks: number[]; filters: string[] };
}

interface Run {
  round: number;
  format: string;
  fur: Receiver;
  h5py: Receiver;
  /** the slower sender's time from first to last message (what its receiver let it send) */
  senderSeconds: { fur: number; h5py: number };
  load: { start: number; max: number; end: number };
}

/** A child's stdout as lines, awaited one by one by a test of each. */
function lines(child: ChildProcess): (match: (line: string) => boolean, what: string) => Promise<{ line: string; at: number }> {
  const seen: Array<{ line: string; at: number }> = [];
  const waiting: Array<() => void> = [];
  let ended = false;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    seen.push({ line, at: Date.now() / 1000 });
    for (const w of waiting.splice(0)) w();
  }).on('close', () => { ended = true; for (const w of waiting.splice(0)) w(); });
  return (match, what) => new Promise((ok, fail) => {
    const look = () => {
      const i = seen.findIndex((s) => match(s.line));
      if (i >= 0) ok(seen.splice(0, i + 1)[i]!);
      else if (ended) fail(new Error(`${what}: the process ended without it`));
      else waiting.push(look);
    };
    look();
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((ok) => { if (child.exitCode !== null) ok(child.exitCode); else child.once('exit', (code) => ok(code)); });
}

/** a process under GNU time, its CPU and peak RSS written to `timeFile` */
function timed(cmd: string, args: string[], timeFile: string): ChildProcess {
  return spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function usage(timeFile: string): { cpuSeconds: number; maxRssMB: number } {
  const [u, s, m] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number) as [number, number, number];
  return { cpuSeconds: u + s, maxRssMB: m / 1024 };
}

function python(args: string[]): Promise<string> {
  const child = spawn(PYTHON, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  return exited(child).then((code) => {
    if (code !== 0) throw new Error(`python3 ${args.join(' ')} exited ${code}`);
    return out;
  });
}

async function once(round: number, format: string): Promise<Run> {
  mkdirSync(DATA, { recursive: true });
  const work = mkdtempSync(join(DATA, 'run-'));
  const children: ChildProcess[] = [];
  let stderr = '';
  // a receiver that never ends (a hang) fails the run instead of holding the benchmark
  const guard = setTimeout(() => { for (const c of children) c.kill('SIGKILL'); }, 15 * 60_000);
  const start = <T extends ChildProcess>(c: T): T => {
    children.push(c);
    c.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    return c;
  };
  try {
    const senders = {
      fur: start(spawn(PYTHON, [SENDER, 'send', format, String(ROWS), String(COLS), String(FRAMES)], { env, stdio: ['pipe', 'pipe', 'inherit'] })),
      h5py: start(spawn(PYTHON, [SENDER, 'send', format, String(ROWS), String(COLS), String(FRAMES)], { env, stdio: ['pipe', 'pipe', 'inherit'] })),
    };
    const out = { fur: lines(senders.fur), h5py: lines(senders.h5py) };
    const port = { fur: (await out.fur(() => true, 'port')).line.trim(), h5py: (await out.h5py(() => true, 'port')).line.trim() };
    const files = { fur: join(work, 'fur.h5'), h5py: join(work, 'h5py.h5') };
    const times = { fur: join(work, 'fur.time'), h5py: join(work, 'h5py.time') };
    const receivers = {
      fur: start(timed(process.execPath, [FUR, 'stream', `tcp://127.0.0.1:${port.fur}`, `file://${files.fur}`, '--json'], times.fur)),
      h5py: start(timed(PYTHON, [WRITER, `tcp://127.0.0.1:${port.h5py}`, files.h5py, '--sync-every', String(FUR_COMMIT_BYTES), '--fletcher32', '--chunk-frames', String(CHUNK_FRAMES)], times.h5py)),
    };
    const received = { fur: lines(receivers.fur), h5py: lines(receivers.h5py) };
    await Promise.all([out.fur((l) => l === 'connected', 'fur connected'), out.h5py((l) => l === 'connected', 'h5py connected')]);
    const load = { start: loadavg()[0]!, max: loadavg()[0]!, end: NaN };
    const sampler = setInterval(() => { load.max = Math.max(load.max, loadavg()[0]!); }, 1000);
    senders.fur.stdin!.end('go\n');
    senders.h5py.stdin!.end('go\n');
    const [sentFur, sentH5py, doneFur, doneH5py] = await Promise.all([
      out.fur((l) => l.startsWith('{'), 'the fur sender\'s times'),
      out.h5py((l) => l.startsWith('{'), 'the h5py sender\'s times'),
      received.fur((l) => l.startsWith('{"type":"series"'), 'fur\'s series line'),
      received.h5py((l) => l.startsWith('{"frames"'), 'the writer\'s line'),
    ]);
    clearInterval(sampler);
    load.end = loadavg()[0]!;
    const furCode = await exited(receivers.fur);
    const writerCode = await exited(receivers.h5py);
    if (furCode !== 0 || writerCode !== 0) throw new Error(`fur exited ${furCode}, the h5py writer ${writerCode}: ${stderr}`);
    const sent = { fur: JSON.parse(sentFur.line) as { first: number; last: number }, h5py: JSON.parse(sentH5py.line) as { first: number; last: number } };
    const series = JSON.parse(doneFur.line) as { frames: number; bytes: number };
    const writer = JSON.parse(doneH5py.line) as { frames: number; bytes: number };
    if (series.frames !== FRAMES || writer.frames !== FRAMES) throw new Error(`fur stored ${series.frames} frames, the h5py writer ${writer.frames}; ${FRAMES} were sent`);
    const measure = async (who: 'fur' | 'h5py', doneAt: number): Promise<Receiver> => {
      const check = JSON.parse(await python([SENDER, 'check', files[who], String(ROWS), String(COLS), String(FRAMES)])) as Receiver['check'];
      // a run whose file does not hold every frame as sent is not a result
      if (!check.equal) throw new Error(`${who}: h5py did not read back the ${FRAMES} frames sent (${JSON.stringify(check)})`);
      const seconds = doneAt - sent[who].first;
      return { seconds: r3(seconds), framesPerSec: r1(FRAMES / seconds), MBps: r1(FRAMES * FRAME_BYTES / 1e6 / seconds), ...rounded(usage(times[who])), check };
    };
    const fur = await measure('fur', doneFur.at);
    const h5py = await measure('h5py', doneH5py.at);
    // the same storage for both, or the comparison says nothing
    if (JSON.stringify([fur.check.chunks, fur.check.filters]) !== JSON.stringify([h5py.check.chunks, h5py.check.filters])) {
      throw new Error(`the files differ in storage: fur chunks ${fur.check.chunks} filters ${fur.check.filters}, h5py chunks ${h5py.check.chunks} filters ${h5py.check.filters}`);
    }
    return {
      round, format, fur, h5py,
      senderSeconds: { fur: r3(sent.fur.last - sent.fur.first), h5py: r3(sent.h5py.last - sent.h5py.first) },
      load: { start: r1(load.start), max: r1(load.max), end: r1(load.end) },
    };
  } finally {
    clearTimeout(guard);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
}

function rounded(u: { cpuSeconds: number; maxRssMB: number }) {
  return { cpuSeconds: r3(u.cpuSeconds), maxRssMB: r1(u.maxRssMB) };
}
function r1(x: number): number { return Math.round(x * 10) / 10; }
function r3(x: number): number { return Math.round(x * 1000) / 1000; }

async function main(): Promise<void> {
  const runs: Run[] = [];
  const loadAtStart = readFileSync('/proc/loadavg', 'utf8').trim();
  for (let r = 0; r < ROUNDS; r++) {
    for (const format of FORMATS) {
      const x = await once(r, format);
      runs.push(x);
      log(`round ${r + 1}/${ROUNDS} ${format.padEnd(5)} fur ${x.fur.MBps.toFixed(1)} MB/s ${x.fur.framesPerSec.toFixed(0)} frames/s CPU ${x.fur.cpuSeconds.toFixed(1)} s RSS ${x.fur.maxRssMB.toFixed(0)} MB`
        + ` | h5py ${x.h5py.MBps.toFixed(1)} MB/s ${x.h5py.framesPerSec.toFixed(0)} frames/s CPU ${x.h5py.cpuSeconds.toFixed(1)} s RSS ${x.h5py.maxRssMB.toFixed(0)} MB | load ${x.load.start}-${x.load.max}`);
    }
  }
  const summary = FORMATS.map((format) => {
    const rs = runs.filter((r) => r.format === format);
    const m = (f: (r: Run) => number) => r3(median(rs.map(f)));
    return {
      format,
      fur: { MBps: m((r) => r.fur.MBps), framesPerSec: m((r) => r.fur.framesPerSec), cpuSeconds: m((r) => r.fur.cpuSeconds), maxRssMB: Math.max(...rs.map((r) => r.fur.maxRssMB)) },
      h5py: { MBps: m((r) => r.h5py.MBps), framesPerSec: m((r) => r.h5py.framesPerSec), cpuSeconds: m((r) => r.h5py.cpuSeconds), maxRssMB: Math.max(...rs.map((r) => r.h5py.maxRssMB)) },
      // within each run, then the median: both receivers saw the same moment's load
      ratio: { rate: m((r) => r.fur.MBps / r.h5py.MBps), cpu: m((r) => r.fur.cpuSeconds / r.h5py.cpuSeconds), rss: m((r) => r.fur.maxRssMB / r.h5py.maxRssMB) },
    };
  });
  const result = {
    bench: 'stream-drain',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: readFileSync('/proc/loadavg', 'utf8').trim() },
    stream: { frames: FRAMES, shape: [ROWS, COLS], dtype: 'uint16', frameBytes: FRAME_BYTES, formats: FORMATS },
    storage: runs[0] ? { chunks: runs[0].fur.check.chunks, filters: runs[0].fur.check.filters } : undefined,
    rounds: ROUNDS,
    summary,
    runs,
  };
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(`${RESULTS}.json`, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(`${RESULTS}.md`, report(result));
  process.stdout.write(report(result));
}

function report(r: { date: string; machine: { cpus: number; cpuModel?: string; node: string }; stream: { frames: number }; storage?: { chunks: number[]; filters: string[] }; rounds: number;
  summary: Array<{ format: string; fur: Record<string, number>; h5py: Record<string, number>; ratio: Record<string, number> }>; runs: Run[] }): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  const gb = (FRAMES * FRAME_BYTES / 1e9).toFixed(2);
  const loads = r.runs.flatMap((x) => [x.load.start, x.load.max]);
  const out = [
    '# Draining a detector stream: fur stream next to an h5py filewriter (bench/stream-drain.ts)',
    '',
    `${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.machine.cpus} cores (${r.machine.cpuModel}), node ${r.machine.node}, Debian h5py/python3-zmq; ${r.rounds} rounds.`,
    `Each run: ${FRAMES} frames of ${ROWS}×${COLS} uint16 (${gb} GB) pushed by a python3-zmq sender to each receiver at once, both writing to the same disk.`,
    `Both files: chunks ${JSON.stringify(r.storage?.chunks)}, filters ${JSON.stringify(r.storage?.filters)} (fur's defaults for these frames; the h5py writer is given the same, checked every run).`,
    `Load average (1 min) during the runs: ${f(Math.min(...loads))} to ${f(Math.max(...loads))} on ${r.machine.cpus} cores shared with other work: the figures are noisy.`,
    '',
    '| format | receiver | MB/s | frames/s | CPU s | peak RSS MB |',
    '|---|---|---:|---:|---:|---:|',
    ...r.summary.flatMap((s) => [
      `| ${s.format} | fur stream | ${f(s.fur.MBps!)} | ${f(s.fur.framesPerSec!, 0)} | ${f(s.fur.cpuSeconds!)} | ${f(s.fur.maxRssMB!, 0)} |`,
      `| ${s.format} | h5py writer | ${f(s.h5py.MBps!)} | ${f(s.h5py.framesPerSec!, 0)} | ${f(s.h5py.cpuSeconds!)} | ${f(s.h5py.maxRssMB!, 0)} |`,
      `| ${s.format} | **fur / h5py** | **${f(s.ratio.rate!, 2)}** | | ${f(s.ratio.cpu!, 2)} | ${f(s.ratio.rss!, 2)} |`,
    ]),
    '',
    'Medians over the rounds (peak RSS: the largest); ratios: per run, then the median.',
    '',
    '| run | format | fur MB/s | h5py MB/s | fur/h5py | fur CPU s | h5py CPU s | fur RSS MB | h5py RSS MB | load start / max |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...r.runs.map((x, i) => `| ${i + 1} | ${x.format} | ${f(x.fur.MBps)} | ${f(x.h5py.MBps)} | ${f(x.fur.MBps / x.h5py.MBps, 2)} | ${f(x.fur.cpuSeconds)} | ${f(x.h5py.cpuSeconds)} | ${f(x.fur.maxRssMB, 0)} | ${f(x.h5py.maxRssMB, 0)} | ${f(x.load.start)} / ${f(x.load.max)} |`),
    '',
    '## How it was measured',
    '',
    '- two python3-zmq senders (bench/stream_sender.py), one per receiver, each a PUSH socket on 127.0.0.1 (send high-water mark 8); both wait until their receiver has connected, then are told to go at the same moment and send the series as fast as their receiver takes it',
    '- fur: `fur stream tcp://127.0.0.1:PORT file://DIR/fur.h5 --json`, defaults (append, NeXus layout with frame names and per-frame attributes, commits of at most 64 MiB with fsync)',
    '- h5py writer (bench/h5py_filewriter.py): PULL socket (receive high-water mark 16, as fur\'s), each frame written into /data at its frame number (resized frame by frame), chunks as in fur\'s file (one frame per chunk for frames of 1 MiB and more), Fletcher-32 as fur stores it, a 256 MiB chunk cache, flush + fsync every 64 MiB of frames (fur\'s commit size) and at the end; no names, attributes or SHA-256 per frame (fur stores all three)',
    '- peak RSS of both receivers includes ZeroMQ\'s receive queue: up to 16 messages (the high-water mark both use; ZeroMQ\'s default of 1000 took 1.3-1.7 GB here) of 2 MiB frames wait there, outside fur\'s own --max-buffered (64 MiB)',
    '- load: the 1-minute load average when both senders were told to go, and its highest value during the run (sampled each second); the benchmark\'s own four processes add about 3-4 to it',
    '- seconds: from the sender\'s first message to the receiver\'s last line (fur\'s `series` event, after its file is closed; the writer\'s, after close and fsync); MB = frame bytes / 1e6',
    '- CPU (user + system) and peak RSS of each receiver\'s process from GNU time (process start-up included: node ~0.1-0.2 s of CPU, python + h5py about the same)',
    '- every run is checked: h5py reads all frames of both files back equal to those sent, and both datasets have the same chunks and filters; otherwise the benchmark stops with an error',
    '',
  ];
  return out.join('\n');
}

main().catch((e) => { process.stderr.write(`${(e as Error).stack ?? e}\n`); process.exit(1); });
