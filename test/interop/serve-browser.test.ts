/**
 * The live view (--serve) in a real browser (Debian's chromium through playwright-core) during a
 * capture from the simulated camera: the frame image changes and shows the current frame (its
 * pixels equal the same frame read back from the file with h5py and drawn with numpy), the
 * counters on the page equal /status and, at the end, the file; the chart has points.
 * Screenshots at 1280x800 and at phone width go to test-output/serve-browser/.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { runCamera } from '../../src/source/camera.js';
import { servedUrl, startServed, type ServedRun } from '../../harness/served.js';
import type { LiveStatus } from '../../src/serve/state.js';
import { launchChromium, testOutput } from '../../harness/browser.js';
import { python } from './support/h5py.js';

const FRAMES = 30;
/** /status while frames flow: its figures and the last frame are there */
type Running = LiveStatus & { figures: NonNullable<LiveStatus['figures']>; frame: NonNullable<LiveStatus['frame']> };
const SHAPE = [600, 800]; // drawn every 2nd pixel: 300x400
const SEED = 7;

/** the thumbnail rule of src/serve/thumbnail.ts, written again with numpy, on the frame h5py reads back */
const DRAW = `
import sys, json, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
d = f['/data']
a = d[int(sys.argv[2])].astype(np.float64)
s = max(1, -(-max(a.shape[0], a.shape[1]) // 400))
t = a[::s, ::s]
v = np.sort(t[np.isfinite(t)].ravel())
n = v.size
lo, hi = v[int(np.floor(0.005 * (n - 1) + 1e-9))], v[int(np.ceil(0.995 * (n - 1) - 1e-9))]
out = np.clip(np.floor((t - lo) * 255 / (hi - lo) + 0.5), 0, 255).astype(np.uint8)
print(json.dumps({'frames': int(d.shape[0]), 'height': out.shape[0], 'width': out.shape[1], 'grey': out.ravel().tolist()}))
`;

/** wait for `ok` (checked every 250 ms); fails with `what` and the last value after `seconds` */
async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, seconds = 90): Promise<T> {
  const end = Date.now() + seconds * 1000;
  let v = await get();
  while (!ok(v)) {
    if (Date.now() > end) assert.fail(`${what}: still ${JSON.stringify(v)} after ${seconds} s`);
    await delay(250);
    v = await get();
  }
  return v;
}

/** the figures as the page shows them */
async function shown(page: Page) {
  return page.evaluate(() => {
    const t = (id: string) => document.getElementById(id)!.textContent!.trim();
    const img = document.getElementById('frame') as HTMLImageElement;
    return {
      state: t('state'), framesCommitted: Number(t('frames-committed')), commits: Number(t('commits')), reconnects: Number(t('reconnects')),
      backlogFiles: Number(t('backlog-files')), kept: Number(t('kept-count')), errors: Number(t('error-count')),
      seq: img.dataset.seq === undefined ? undefined : Number(img.dataset.seq), row: img.dataset.row === undefined ? undefined : Number(img.dataset.row),
      caption: t('frame-row'), name: t('frame-name'), points: Number(document.getElementById('chart')!.dataset.points ?? 0),
    };
  });
}

describe('live view in chromium', () => {
  let dir: string;
  let fur: ServedRun | undefined;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'fur-serve-')); });
  after(async () => {
    await browser?.close();
    if (fur && fur.child.exitCode === null) fur.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  test('frames, figures and chart of a capture as it goes, equal to /status and to the file', async () => {
    const cam = join(dir, 'cam');
    const out = join(dir, 'out');
    await mkdir(cam);
    await mkdir(out);
    const file = join(out, 'run.h5');
    fur = await startServed(['watch', cam, `file://${file}`, '--pattern', '*.tif', '--completion', 'rename', '--stop-file', 'capture.done',
      '--batch', '5', '--batch-seconds', '1', '--serve', '127.0.0.1:0']);
    assert.match(fur.url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'loopback: no token');
    browser = await launchChromium();
    const page = browser.context.pages()[0] ?? await browser.context.newPage();
    const failed: string[] = [];
    page.on('pageerror', (e) => failed.push(String(e)));
    page.on('requestfailed', (r) => { if (!r.url().includes('/events')) failed.push(`${r.url()} ${r.failure()?.errorText}`); });
    await page.goto(fur.url);

    // the camera writes while the page looks: the picture follows the commits
    const seen = new Set<number>();
    const camera = runCamera({ dir: cam, frames: FRAMES, format: 'tiff', dtype: 'uint16', shape: SHAPE, fps: 4, seed: SEED });
    let written = false;
    void camera.then(() => { written = true; });
    while (!written) {
      const s = await shown(page);
      if (s.seq !== undefined) seen.add(s.seq);
      await delay(200);
    }
    await camera;
    const done = await until('the page showing every frame committed and the last one drawn', () => shown(page),
      (s) => s.framesCommitted === FRAMES && s.row === FRAMES - 1);
    seen.add(done.seq!);
    assert.ok(seen.size >= 2, `the frame image changed during the capture (pictures seen: ${[...seen].join(', ')})`);
    assert.equal(done.caption, `#${FRAMES - 1}`);
    assert.equal(done.name, `frame${String(FRAMES).padStart(6, '0')}.tif`);

    // the counters on the page equal /status (both settle within a tick once nothing moves)
    const status = async () => (await fetch(servedUrl(fur!.url, '/status'))).json() as Promise<Running>;
    const pair = await until('the page and /status agreeing', async () => ({ page: await shown(page), status: await status() }),
      ({ page: p, status: s }) => s.figures.frames.committed === p.framesCommitted && s.commits === p.commits && s.figures.backlog.files === p.backlogFiles
        && s.figures.reconnects === p.reconnects && s.kept.length === p.kept && s.errors.length === p.errors && s.frame.seq === p.seq, 20);
    const s = pair.status;
    assert.equal(s.state, 'running');
    assert.equal(s.figures.frames.committed, FRAMES);
    assert.equal(s.frame.row, FRAMES - 1);
    assert.equal(s.figures.backlog.files, 0);
    assert.ok(s.commits >= 2, `commits: ${s.commits}`);
    assert.deepEqual(s.kept, []);
    assert.equal(s.destination.url, file);
    assert.ok((s.destination.fileBytes ?? 0) > FRAMES * SHAPE[0]! * SHAPE[1]! * 2, `file size ${s.destination.fileBytes}`);

    // the picture is the current frame: every pixel as numpy draws the frame h5py reads from the file
    const pixels = await page.evaluate(() => {
      const img = document.getElementById('frame') as HTMLImageElement;
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      const grey: number[] = [];
      let colour = 0;
      for (let i = 0; i < d.length; i += 4) { grey.push(d[i]!); if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) colour++; }
      return { width: c.width, height: c.height, grey, colour, row: Number(img.dataset.row) };
    });
    const drawn = JSON.parse((await python(DRAW, [file, String(pixels.row)])).trim().split('\n').pop()!) as { frames: number; width: number; height: number; grey: number[] };
    assert.equal(drawn.frames, FRAMES);
    assert.deepEqual([pixels.height, pixels.width], [drawn.height, drawn.width]);
    assert.deepEqual([pixels.height, pixels.width], [300, 400]);
    assert.equal(pixels.colour, 0, 'a grey frame is drawn grey');
    let differ = 0;
    for (let i = 0; i < drawn.grey.length; i++) if (drawn.grey[i] !== pixels.grey[i]) differ++;
    assert.equal(differ, 0, `${differ} of ${drawn.grey.length} pixels differ from frame ${pixels.row} drawn by numpy`);
    assert.ok(new Set(drawn.grey).size > 100, 'the frame has detail to compare');

    // the chart has points, and /status has them too, with the upload moving
    assert.ok(pair.page.points >= 3, `chart points: ${pair.page.points}`);
    assert.ok(await page.locator('#chart canvas').count() >= 1, 'uPlot drew a canvas');
    const chart = s.chart;
    assert.ok(chart, '/status has the chart');
    assert.ok(chart.t.length >= pair.page.points - 1 && chart.upload.some((v) => v > 0), 'the upload rate was above 0 on the chart');
    // the camera's rate (4 frames a second while it wrote; never more than all its frames in a second) is on the chart beside the upload's
    const instrumentFps = chart.instrumentFps.filter((v): v is number => v !== null && v > 0);
    assert.ok(instrumentFps.length > 0 && Math.max(...instrumentFps) <= FRAMES, `instrument frames/s: ${chart.instrumentFps.join(' ')}`);
    assert.ok((s.figures.disk?.free ?? 0) > 0, `local disk free: ${JSON.stringify(s.figures.disk)}`);
    assert.match(await page.locator('#disk-free').textContent() ?? '', /[0-9.]+ [kMGT]?B/);

    // the snippet opens the file as shown
    const opened = await python(`${s.open.h5py}\nprint(frames.shape[0])`);
    assert.equal(Number(opened.trim()), FRAMES);

    // screenshots for a person to look at
    const shots = testOutput('serve-browser');
    await mkdir(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'page-1280x800.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await delay(500);
    await page.screenshot({ path: join(shots, 'page-390x844.png'), fullPage: true });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `nothing wider than the phone's screen (page is ${width} px wide)`);

    // the end: the page says so, and its figures are the file's
    await writeFile(join(cam, 'capture.done'), '');
    const exit = await fur.exit;
    assert.equal(exit.code, 0, fur.output());
    const final = await until('the page showing the end', () => shown(page), (p) => p.state === 'finished');
    const read = JSON.parse((await python(DRAW, [file, String(FRAMES - 1)])).trim().split('\n').pop()!) as { frames: number };
    assert.equal(final.framesCommitted, read.frames);
    assert.equal(final.row, read.frames - 1);
    assert.deepEqual(failed, [], 'no script error or failed request on the page');
  });
});
