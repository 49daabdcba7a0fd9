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
 * every frame committed at the end. Results: bench/results/serve-overhead.json.
 */
import { cpus, loadavg } from 'node:os';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCamera } from '../src/source/camera.js';
import { launchChromium } from '../test/interop/support/browser.js';
import { startServed } from '../test/support/served.js';
import { median } from './stats.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DATA = join(REPO, 'bench', 'data', 'serve-overhead');
const FRAMES_DIR = join(DATA, 'frames');
const RESULTS = join(REPO, 'bench', 'results', 'serve-overhead.json');
const FRAMES = 1600;
const SHAPE = [512, 512];
const ROUNDS = Math.max(1, Number(process.argv[2] ?? 5));

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
  const browser = await launchChromium();
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
  const withPage = median(runs.filter((r) => r.page).map((r) => r.mbPerSec));
  const without = median(runs.filter((r) => !r.page).map((r) => r.mbPerSec));
  const difference = (without - withPage) / without;
  const result = {
    when: new Date().toISOString(), cpus: cpus().length, node: process.version, rounds: ROUNDS,
    capture: { frames: FRAMES, shape: SHAPE, dtype: 'uint16', format: 'tiff', sourceBytes },
    medianMBps: { withPage, without }, difference,
    medianFurCpuSeconds: { withPage: median(runs.filter((r) => r.page).map((r) => r.furCpuSeconds)), without: median(runs.filter((r) => !r.page).map((r) => r.furCpuSeconds)) }, target: 'less than 3%', met: Math.abs(difference) < 0.03, runs,
  };
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(RESULTS, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`median with page ${withPage.toFixed(1)} MB/s, without ${without.toFixed(1)} MB/s: ${(difference * 100).toFixed(2)}% slower with the page (${result.met ? 'met' : 'not met'}: < 3%)\n`);
}

main().catch((e) => { process.stderr.write(`${(e as Error).stack ?? e}\n`); process.exit(1); });
