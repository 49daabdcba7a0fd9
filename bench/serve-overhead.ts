/**
 * What a live view's page costs a capture: the same upload with and without the page open.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/serve-overhead.js [rounds]
 *
 * The capture: 1,600 frames of 512×512 uint16 written once as TIFF files (~840 MB) into
 * bench/data/serve-overhead/. Each run is a fresh `fur watch --serve 127.0.0.1:0 --json` of an
 * empty folder into a file:// HDF5 file (--method append); once fur listens, the page is opened
 * (or not) in Debian's chromium (playwright-core), then every frame file is hard-linked into the
 * folder at once, then the stop file. The upload rate is the frame bytes fur committed (its done
 * event) over the time from the first link to fur's done event. One chromium runs throughout,
 * so both configurations share its idle cost; "with page" is a tab on the page (live figures,
 * chart, frame picture) for the whole upload. Rounds alternate the order (with, without /
 * without, with) so drift in the machine's load falls on both alike. Reported: the median of
 * each over the rounds and their difference; a run with the page counts only if the page showed
 * every frame committed at the end. Also reported: fur's own CPU seconds (user + system, its
 * threads included) with and without the page, the part of the page's cost fur controls
 * (chromium's drawing is the browser's, on the same cores). With two or more cores and `taskset`,
 * chromium runs on core 1, fur (and this script) on core 0, so the browser's work does not
 * take fur's core; `--no-pin` leaves both to the scheduler. The load average (1 minute) at each
 * run's start is recorded: other work on the machine moves every figure.
 * Results: bench/results/serve-overhead.json and .md.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCamera } from '../src/source/camera.js';
import { launchChromium } from '../harness/browser.js';
import { startServed } from '../harness/served.js';
import { median } from './stats.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DATA = join(REPO, 'bench', 'data', 'serve-overhead');
const FRAMES_DIR = join(DATA, 'frames');
const RESULTS = join(REPO, 'bench', 'results', 'serve-overhead');
const FRAMES = 1600;
const SHAPE = [512, 512];
const ARGS = process.argv.slice(2);
const ROUNDS = Math.max(1, Number(ARGS.find((a) => /^\d+$/.test(a)) ?? 5));
/** fur on core 0, chromium on core 1 (when there are two cores and taskset) */
const PIN = !ARGS.includes('--no-pin') && cpus().length >= 2 && hasTaskset();

function hasTaskset(): boolean {
  try { execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** every thread of process `pid` onto core `core` (threads it starts later inherit it) */
function pin(pid: number, core: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}

async function prepare(): Promise<string[]> {
  const marker = join(DATA, '.complete');
  if (!existsSync(marker)) {
    rmSync(DATA, { recursive: true, force: true });
    mkdirSync(FRAMES_DIR, { recursive: true });
    await runCamera({ dir: FRAMES_DIR, frames: FRAMES, format: 'tiff', dtype: 'uint16', shape: SHAPE, seed: 5 });
    writeFileSync(marker, '');
  }
  return readdirSync(FRAMES_DIR).filter((n) => n.endsWith('.tif')).sort();
}

interface Run { page: boolean; mbPerSec: number; seconds: number; bytes: number; frames: number; load: number; furCpuSeconds: number }

/** user + system CPU seconds of a running process so far (/proc/PID/stat, in clock ticks of 1/100 s) */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function once(files: string[], browser: Awaited<ReturnType<typeof launchChromium>>, page: boolean): Promise<Run> {
  const work = mkdtempSync(join(DATA, 'run-'));
  const cam = join(work, 'cam');
  mkdirSync(cam);
  try {
    const fur = await startServed(['watch', cam, `file://${join(work, 'run.h5')}`, '--pattern', '*.tif', '--completion', 'rename',
      '--stop-file', 'capture.done', '--serve', '127.0.0.1:0', '--json']);
    if (PIN) pin(fur.child.pid!, 0);
    const tab = page ? await browser.context.newPage() : undefined;
    if (tab) {
      await tab.goto(fur.url);
      await tab.waitForFunction(() => document.getElementById('state')?.textContent === 'running');
    }
    const load = loadavg()[0]!;
    const t0 = performance.now();
    for (const f of files) linkSync(join(FRAMES_DIR, f), join(cam, f));
    writeFileSync(join(cam, 'capture.done'), '');
    const done = await new Promise<{ bytes: number; frames: number }>((ok, fail) => {
      const look = () => {
        const m = /^(\{"type":"done".*\})$/m.exec(fur.output());
        if (m) { fur.child.stdout!.off('data', look); ok(JSON.parse(m[1]!)); }
      };
      fur.child.stdout!.on('data', look);
      void fur.exit.then(() => { look(); fail(new Error(`fur ended without a done event:\n${fur.output().slice(-2000)}`)); });
    });
    const seconds = (performance.now() - t0) / 1000;
    // fur's own work (its worker threads included), read while it closes: the page's cost to fur apart from the browser's
    const furCpuSeconds = cpuSeconds(fur.child.pid!);
    // the page followed the whole upload
    await tab?.waitForFunction((n) => document.getElementById('frames-committed')?.textContent === String(n), FRAMES, { timeout: 60_000 });
    const exit = await fur.exit;
    if (exit.code !== 0) throw new Error(`fur exited ${exit.code}:\n${fur.output().slice(-2000)}`);
    await tab?.close();
    if (done.frames !== FRAMES) throw new Error(`${done.frames} frames committed, ${FRAMES} expected`);
    return { page, mbPerSec: done.bytes / 1e6 / seconds, seconds, bytes: done.bytes, frames: done.frames, load, furCpuSeconds };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const files = await prepare();
  const sourceBytes = files.reduce((a, f) => a + statSync(join(FRAMES_DIR, f)).size, 0);
  // the browser on core 1 (its processes inherit the core of the process that starts them), then
  // this script back beside fur on core 0: its clock and the links it makes do not wait for the browser
  if (PIN) pin(process.pid, 1);
  const browser = await launchChromium();
  if (PIN) pin(process.pid, 0);
  const runs: Run[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const page of r % 2 ? [false, true] : [true, false]) {
        const x = await once(files, browser, page);
        runs.push(x);
        process.stderr.write(`round ${r + 1} ${page ? 'with page   ' : 'without page'} ${x.mbPerSec.toFixed(1)} MB/s (${x.seconds.toFixed(1)} s, fur CPU ${x.furCpuSeconds.toFixed(1)} s, load ${x.load.toFixed(1)})\n`);
      }
    }
  } finally {
    await browser.close();
  }
  const pick = (page: boolean, f: (r: Run) => number) => median(runs.filter((r) => r.page === page).map(f));
  const withPage = pick(true, (r) => r.mbPerSec);
  const without = pick(false, (r) => r.mbPerSec);
  const difference = (without - withPage) / without;
  const cpu = { withPage: pick(true, (r) => r.furCpuSeconds), without: pick(false, (r) => r.furCpuSeconds) };
  const loads = runs.map((r) => r.load);
  const result = {
    when: new Date().toISOString(), cpus: cpus().length, node: process.version, rounds: ROUNDS,
    pinned: PIN ? { fur: 0, bench: 0, chromium: 1 } : false, load: { min: Math.min(...loads), median: median(loads), max: Math.max(...loads) },
    capture: { frames: FRAMES, shape: SHAPE, dtype: 'uint16', format: 'tiff', sourceBytes },
    medianMBps: { withPage, without }, difference,
    medianFurCpuSeconds: cpu, furCpuRatio: cpu.withPage / cpu.without,
    target: 'less than 3%', met: Math.abs(difference) < 0.03, runs,
  };
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(`${RESULTS}.json`, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(`${RESULTS}.md`, report(result));
  process.stdout.write(`median with page ${withPage.toFixed(1)} MB/s, without ${without.toFixed(1)} MB/s: ${(difference * 100).toFixed(2)}% slower with the page (${result.met ? 'met' : 'not met'}: < 3%); `
    + `fur's CPU ${cpu.withPage.toFixed(2)} vs ${cpu.without.toFixed(2)} s (x${result.furCpuRatio.toFixed(3)})\n`);
}

function report(r: { when: string; cpus: number; node: string; rounds: number; pinned: boolean | object; load: { min: number; median: number; max: number };
  medianMBps: { withPage: number; without: number }; difference: number; medianFurCpuSeconds: { withPage: number; without: number }; furCpuRatio: number; met: boolean; runs: Run[] }): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  return `# What the live view's page costs a capture (bench/serve-overhead.ts)

${r.when.slice(0, 16).replace('T', ' ')} UTC, ${r.cpus} cores, node ${r.node}, ${r.rounds} alternating rounds; ${FRAMES} frames of ${SHAPE.join('×')} uint16 TIFF
(${f(FRAMES * SHAPE[0]! * SHAPE[1]! * 2 / 1e6, 0)} MB of frames), \`fur watch --serve\` into a file:// HDF5 file, with and without the page open in chromium.
${r.pinned ? 'fur (and the benchmark) pinned to core 0, chromium to core 1 (`taskset`).' : 'Not pinned: fur and chromium share the cores as the scheduler decides.'}
Load average (1 min) at the runs' starts: ${f(r.load.min)} to ${f(r.load.max)} (median ${f(r.load.median)}) on ${r.cpus} cores shared with other work: the figures are noisy.

| | with page | without | with / without |
|---|---:|---:|---:|
| upload, MB/s (median) | ${f(r.medianMBps.withPage)} | ${f(r.medianMBps.without)} | ${f(r.medianMBps.withPage / r.medianMBps.without, 3)} |
| fur's own CPU, s (median) | ${f(r.medianFurCpuSeconds.withPage, 2)} | ${f(r.medianFurCpuSeconds.without, 2)} | ${f(r.furCpuRatio, 3)} |

Upload rate ${f(r.difference * 100, 2)}% ${r.difference >= 0 ? 'slower' : 'faster'} with the page: the < 3% target is ${r.met ? 'met' : 'not met'}.

| run | page | MB/s | s | fur CPU s | load |
|---:|---|---:|---:|---:|---:|
${r.runs.map((x, i) => `| ${i + 1} | ${x.page ? 'yes' : 'no'} | ${f(x.mbPerSec)} | ${f(x.seconds)} | ${f(x.furCpuSeconds, 2)} | ${f(x.load)} |`).join('\n')}
`;
}

main().catch((e) => { process.stderr.write(`${(e as Error).stack ?? e}\n`); process.exit(1); });
