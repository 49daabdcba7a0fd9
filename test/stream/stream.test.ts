/**
 * fur stream: frames a sender PUSHes over ZeroMQ (here a zeromq socket in this process, bound on
 * 127.0.0.1), stored and read back with h5wasm — EIGER stream v1 (raw and LZ4) and the plain
 * format, 1,000 frames each; frame numbers that are missing or repeated are reported. The
 * bitshuffle-LZ4 encoding needs the HDF5 plugin to read: test/interop/stream-zmq.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, watch } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { compressSync } from 'lz4-napi';
import { Push } from 'zeromq';
import { stream, type StreamOptions } from '../../src/stream/receive.js';
import { Spool } from '../../src/stream/spool.js';
import type { ProgressEvent } from '../../src/index.js';
import { cli, openDest, readStored, runKilledAfter, scratch, slowSftp } from '../pipeline/helpers.js';
import { dataset, perFrame, valueBytes, valueStrings, type H5Doc } from '../support/h5wasm.js';

/** rows × columns of a frame (EIGER's dimage_d says [columns, rows]) */
const ROWS = 12;
const COLS = 20;

/** frame i: every pixel a function of i and its place */
function frame(i: number): Uint16Array {
  const f = new Uint16Array(ROWS * COLS);
  for (let p = 0; p < f.length; p++) f[p] = (i * 7919 + p * 31) & 0xffff;
  return f;
}

/** a scalar or list field's value as h5wasm reads it: numbers by their dtype, strings as text */
function fieldOf(doc: H5Doc, path: string): { value: unknown; units?: unknown } {
  const d = dataset(doc, path);
  const units = d.attrs.units?.value;
  if (d.value?.kind === 'strings') return { value: d.value.items.length === 1 && !d.shape?.length ? d.value.items[0] : d.value.items, units };
  const raw = valueBytes(d).slice();
  const list = d.dtype === '<f8' ? [...new Float64Array(raw.buffer)] : d.dtype === '<i8' ? [...new BigInt64Array(raw.buffer)].map(Number)
    : d.dtype === '|u1' ? [...raw] : assert.fail(`${path}: dtype ${d.dtype}`);
  return { value: d.shape?.length ? list : list[0], units };
}

const bytes = (a: Uint16Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

type Message = Buffer[];

/** EIGER stream v1 messages of one series: header (with configuration), images, end. */
function eigerSeries(numbers: number[], encoding: '<' | 'lz4<', announced = numbers.length, config: Record<string, unknown> = {}): Message[] {
  const series = 7;
  const out: Message[] = [[json({ htype: 'dheader-1.0', series, header_detail: 'basic' }), json({ nimages: announced, ntrigger: 1, x_pixels_in_detector: COLS, y_pixels_in_detector: ROWS, ...config })]];
  for (const n of numbers) {
    const raw = bytes(frame(n));
    // lz4-napi prepends the size (4 bytes); the stream carries the bare LZ4 block
    const blob = encoding === '<' ? raw : compressSync(raw).subarray(4);
    out.push([
      json({ htype: 'dimage-1.0', series, frame: n, hash: '' }),
      json({ htype: 'dimage_d-1.0', shape: [COLS, ROWS], type: 'uint16', encoding, size: blob.length }),
      blob,
      json({ htype: 'dconfig-1.0', start_time: n * 1000, stop_time: n * 1000 + 500, real_time: 500 }),
    ]);
  }
  out.push([json({ htype: 'dseries_end-1.0', series })]);
  return out;
}

function plainSeries(numbers: number[]): Message[] {
  return [
    ...numbers.map((n) => [json({ frame: n, shape: [ROWS, COLS], dtype: 'uint16', attrs: { energy_kev: 12.4, n } }), bytes(frame(n))]),
    [json({ end: true })],
  ];
}

/** A sender bound on an ephemeral loopback port; `send` pushes the messages as fast as ZeroMQ takes them. */
async function sender(t: { after: (fn: () => void) => void }): Promise<{ endpoint: string; send: (messages: Message[]) => Promise<void> }> {
  const push = new Push({ sendHighWaterMark: 100 });
  await push.bind('tcp://127.0.0.1:*');
  t.after(() => push.close());
  return { endpoint: push.lastEndpoint!, send: async (messages) => { for (const m of messages) await push.send(m); } };
}

async function receive(t: Parameters<typeof sender>[0] & Parameters<typeof openDest>[1], messages: Message[], method: 'append' | 'batches', o: StreamOptions = {}) {
  const dest = await openDest('file', t);
  const s = await sender(t);
  const events: ProgressEvent[] = [];
  const sending = s.send(messages);
  const summary = await stream(s.endpoint, dest.url(method, 'run'), { method, batch: 100, onProgress: (e) => events.push(e), ...o });
  await sending;
  return { dest, summary, events, stored: await readStored(dest, method, 'run') };
}

/** Resolves once `dir` holds `name` (watched: fur's own progress, not the clock). */
function appears(dir: string, name: string, t: { after: (fn: () => void) => void }): Promise<void> {
  return new Promise((resolve) => {
    const watcher = watch(dir, () => { if (existsSync(join(dir, name))) { watcher.close(); resolve(); } });
    t.after(() => watcher.close());
    if (existsSync(join(dir, name))) { watcher.close(); resolve(); }
  });
}

const N = 1000;
const all = Array.from({ length: N }, (_, i) => i);
const name = (n: number) => `frame_${String(n).padStart(6, '0')}`;

function assertFrames(stored: { frames: Uint8Array[]; names: string[] }, numbers: number[]): void {
  assert.deepEqual(stored.names, numbers.map(name));
  assert.equal(stored.frames.length, numbers.length);
  stored.frames.forEach((f, i) => assert.ok(Buffer.from(f).equals(bytes(frame(numbers[i]!))), `frame ${numbers[i]}`));
}

describe('fur stream', () => {
  for (const encoding of ['<', 'lz4<'] as const) {
    test(`EIGER stream v1, encoding ${encoding}: ${N} frames stored as sent, [x, y] as rows × columns, dconfig times with each`, async (t) => {
      const { summary, stored } = await receive(t, eigerSeries(all, encoding), 'append');
      assert.equal(summary.format, 'eiger');
      assert.equal(summary.series.length, 1);
      assert.equal(summary.series[0]!.frames, N);
      assert.deepEqual([summary.series[0]!.missing, summary.series[0]!.repeated], [[], []]);
      assertFrames(stored, all);
      assert.deepEqual(dataset(stored.docs[0]!, '/data').shape, [N, ROWS, COLS]);
      const attrs = valueStrings(perFrame(stored.docs[0]!, 'frame_attrs')).map((s) => JSON.parse(s));
      assert.deepEqual(attrs[3], { start_time: 3000, stop_time: 3500, real_time: 500 });
    });
  }

  test('EIGER header_detail all: the detector configuration in /entry/instrument with NeXus names and units, the rest kept as the detector named it; dconfig times per frame', async (t) => {
    const config = {
      beam_center_x: 10.5, beam_center_y: 6.25, count_time: 0.0099, frame_time: 0.01, detector_distance: 0.12, detector_readout_time: 1e-7,
      wavelength: 0.9763, photon_energy: 12700, x_pixel_size: 7.5e-5, y_pixel_size: 7.5e-5, sensor_thickness: 0.00045, sensor_material: 'Si',
      description: 'Dectris EIGER2 Si 16M', detector_number: 'E-32-0100', bit_depth_readout: 16, bit_depth_image: 32, threshold_energy: 6350,
      countrate_correction_applied: true, flatfield_correction_applied: false, countrate_correction_count_cutoff: 765063,
      omega_start: 0, omega_increment: 0.1, trigger_mode: 'ints', software_version: '1.8.0', roi_mode: '', detector_translation: [0, 0, -0.12],
      data_collection_date: '2026-12-08T00:00:00.000+00:00', chi_start: null,
    };
    const numbers = Array.from({ length: 20 }, (_, i) => i);
    const { stored } = await receive(t, eigerSeries(numbers, '<', 20, config), 'append');
    assertFrames(stored, numbers);
    const doc = stored.docs[0]!;
    const at = (p: string) => fieldOf(doc, `/entry/instrument/${p}`);
    // NeXus names, with the units EIGER gives them in
    const nexus: [string, unknown, string | undefined][] = [
      ['detector/beam_center_x', 10.5, 'pixel'], ['detector/beam_center_y', 6.25, 'pixel'], ['detector/count_time', 0.0099, 's'],
      ['detector/frame_time', 0.01, 's'], ['detector/distance', 0.12, 'm'], ['detector/detector_readout_time', 1e-7, 's'],
      ['detector/x_pixel_size', 7.5e-5, 'm'], ['detector/y_pixel_size', 7.5e-5, 'm'], ['detector/sensor_thickness', 0.00045, 'm'],
      ['detector/sensor_material', 'Si', undefined], ['detector/description', 'Dectris EIGER2 Si 16M', undefined],
      ['detector/serial_number', 'E-32-0100', undefined], ['detector/bit_depth_readout', 16, undefined], ['detector/threshold_energy', 6350, 'eV'],
      ['detector/countrate_correction_applied', 1, undefined], ['detector/flatfield_applied', 0, undefined], ['detector/saturation_value', 765063, undefined],
      ['beam/incident_wavelength', 0.9763, 'angstrom'], ['beam/incident_energy', 12700, 'eV'],
    ];
    for (const [p, value, units] of nexus) assert.deepEqual(at(p), { value, units }, p);
    // NXFLOAT fields are floats even when the value is whole
    assert.equal(dataset(doc, '/entry/instrument/detector/threshold_energy').dtype, '<f8');
    // everything else, by the detector's own names (angles in degrees)
    const specific: [string, unknown, string | undefined][] = [
      ['nimages', 20, undefined], ['ntrigger', 1, undefined], ['x_pixels_in_detector', COLS, undefined], ['y_pixels_in_detector', ROWS, undefined],
      ['bit_depth_image', 32, undefined], ['omega_start', 0, 'deg'], ['omega_increment', 0.1, 'deg'], ['trigger_mode', 'ints', undefined],
      ['software_version', '1.8.0', undefined], ['roi_mode', '', undefined], ['detector_translation', [0, 0, -0.12], undefined],
      ['data_collection_date', '2026-12-08T00:00:00.000+00:00', undefined], ['chi_start', 'null', 'deg'],
    ];
    for (const [k, value, units] of specific) assert.deepEqual(at(`detector/detector_specific/${k}`), { value, units }, k);
    // nothing the detector said is dropped: every key of its configuration is a field
    const fields = Object.keys(doc.objects).filter((p) => p.startsWith('/entry/instrument/') && doc.objects[p]!.kind === 'dataset');
    assert.equal(fields.length, nexus.length + specific.length, fields.join('\n'));
    const nxClass = (p: string) => (doc.objects[p] as { attrs: Record<string, { value: unknown }> }).attrs.NX_class?.value;
    assert.deepEqual(['', '/detector', '/beam', '/detector/detector_specific'].map((p) => nxClass(`/entry/instrument${p}`)), ['NXinstrument', 'NXdetector', 'NXbeam', 'NXcollection']);
    // dconfig-1.0's times per frame beside the frames, under their NXdetector names too
    for (const [key, offset] of [['start_time', 0], ['stop_time', 500]] as const) {
      const d = perFrame(doc, `frame_${key}`);
      assert.deepEqual([...new Float64Array(valueBytes(d).slice().buffer)], numbers.map((n) => n * 1000 + offset), key);
      assert.equal(d.attrs.units?.value, 'ns');
      assert.deepEqual(doc.objects[`/entry/instrument/detector/${key}`], { kind: 'softlink', target: `/entry/data/frame_${key}` });
    }
    assert.deepEqual(fieldOf(doc, '/entry/instrument/detector/real_time').value, numbers.map(() => 500));
  });

  test('--spool: an EIGER series a killed run left before its first commit is stored with its header: the detector fields, the per-frame times', async (t) => {
    const dest = await openDest('file', t);
    const url = dest.url('append', 'header');
    const spool = join(await scratch(t, 'fur-spool-'), 'spool');
    // what a run killed before its first commit leaves: the header, the frames received, the end
    const left = await Spool.open(spool, 1 << 30, () => undefined);
    const numbers = Array.from({ length: 10 }, (_, i) => i);
    await left.spool.header(7, url, { nimages: 10, ntrigger: 1, detector_distance: 0.12, trigger_mode: 'exts' });
    for (const n of numbers) {
      await left.spool.put({ series: 7, destination: url, frame: n, name: name(n), dtype: 'uint16', shape: [ROWS, COLS], attrs: { start_time: n * 1000, stop_time: n * 1000 + 500, real_time: 500 } }, bytes(frame(n)));
    }
    await left.spool.end(7, url);
    const s = await sender(t);
    const summary = await stream(s.endpoint, url, { spool });
    assert.deepEqual(summary.series.map((x) => [x.series, x.frames]), [[7, 10]]);
    assert.deepEqual(await readdir(spool), []);
    const stored = await readStored(dest, 'append', 'header');
    assertFrames(stored, numbers);
    const doc = stored.docs[0]!;
    assert.deepEqual(fieldOf(doc, '/entry/instrument/detector/distance'), { value: 0.12, units: 'm' });
    assert.deepEqual(fieldOf(doc, '/entry/instrument/detector/detector_specific/trigger_mode'), { value: 'exts', units: undefined });
    assert.deepEqual(fieldOf(doc, '/entry/instrument/detector/start_time').value, numbers.map((n) => n * 1000));
  });

  test(`plain format, batches: ${N} frames with their attrs`, async (t) => {
    const { summary, stored } = await receive(t, plainSeries(all), 'batches');
    assert.equal(summary.format, 'plain');
    assert.equal(summary.series[0]!.frames, N);
    assertFrames(stored, all);
    const attrs = stored.docs.flatMap((d) => valueStrings(perFrame(d, 'frame_attrs'))).map((s) => JSON.parse(s));
    assert.deepEqual(attrs.map((a) => a.n), all);
    assert.equal(attrs[0].energy_kev, 12.4);
  });

  for (const format of ['eiger', 'plain'] as const) {
    test(`--format ${format} given: the series is stored as when recognised (format is the sender's, not a file format)`, async (t) => {
      const numbers = all.slice(0, 30);
      const { summary, stored } = await receive(t, format === 'eiger' ? eigerSeries(numbers, '<') : plainSeries(numbers), 'append', { format });
      assert.equal(summary.format, format);
      assert.equal(summary.series[0]!.frames, numbers.length);
      assertFrames(stored, numbers);
    });
  }

  test('missing and repeated frame numbers are reported; a repeated frame is stored once', async (t) => {
    const numbers = [0, 1, 2, 3, 6, 7, 7, 8, 2, 9];
    const { summary, stored, events } = await receive(t, eigerSeries(numbers, '<', 12), 'append');
    const s = summary.series[0]!;
    assert.deepEqual(s.missing, [4, 5, 10, 11]);
    assert.deepEqual(s.repeated, [7, 2]);
    assertFrames(stored, [0, 1, 2, 3, 6, 7, 8, 9]);
    const warnings = events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);
    assert.ok(warnings.includes('series 7: frames 4-5 did not arrive (frame 6 came after frame 3)'), warnings.join('\n'));
    assert.ok(warnings.includes('series 7: frame 7 came again after frame 7; not stored twice'), warnings.join('\n'));
    assert.ok(warnings.includes('series 7: ended after 10 of the 12 frames it announced (frames 10-11 never came)'), warnings.join('\n'));
  });

  test('--series 2: one file per series, named after it', async (t) => {
    const dest = await openDest('file', t);
    const s = await sender(t);
    const first = plainSeries([0, 1, 2]);
    const second = plainSeries([0, 1]).map((m) => m.map((part, i) => (i === 0 ? json({ ...JSON.parse(part.toString()), series: 2 }) : part)));
    const sending = s.send([...first.map((m) => m.map((part, i) => (i === 0 ? json({ ...JSON.parse(part.toString()), series: 1 }) : part))), ...second]);
    const summary = await stream(s.endpoint, dest.url('append', 'run'), { series: 2 });
    await sending;
    assert.deepEqual(summary.series.map((x) => [x.series, x.frames, x.destination.replace(/.*\//, '')]), [[1, 3, 'run_series_1.h5'], [2, 2, 'run_series_2.h5']]);
    assertFrames(await readStored(dest, 'append', 'run_series_1'), [0, 1, 2]);
    assertFrames(await readStored(dest, 'append', 'run_series_2'), [0, 1]);
  });

  test('the command: exit 3 when frame numbers are missing, and bad settings are usage errors', async (t) => {
    const dest = await openDest('file', t);
    const s = await sender(t);
    const sending = s.send(plainSeries([0, 2]));
    const r = await cli(['stream', s.endpoint, dest.url('append', 'cmd')]);
    await sending;
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /series 1: frame 1 did not arrive/);
    assert.match(r.stderr, /fur stream: series 1: 2 frames → .*cmd\.h5 \(frame numbers: 1 missing\)/);
    assertFrames(await readStored(dest, 'append', 'cmd'), [0, 2]);
    assert.equal((await cli(['stream', s.endpoint, dest.url('append', 'x'), '--series', '0'])).code, 2);
    assert.equal((await cli(['stream', s.endpoint, dest.url('append', 'x'), '--format', 'cbor'])).code, 2);
    assert.equal((await cli(['stream', s.endpoint, dest.url('files', 'x'), '--method', 'files'])).code, 2);
    const bad = await cli(['stream', 'tcp://127.0.0.1:', dest.url('append', 'x')]);
    assert.equal(bad.code, 2);
    assert.match(bad.lastLine, /^fur: tcp:\/\/127\.0\.0\.1:: not a ZeroMQ endpoint fur can connect to \(.*\); give tcp:\/\/host:port or ipc:\/\/\/path$/);
  });

  test('the command takes --config, -v, -q and --log-file as upload and watch do', async (t) => {
    const dest = await openDest('file', t);
    const dir = await scratch(t, 'fur-stream-log-');
    const log = join(dir, 'stream.jsonl');
    const config = join(dir, 'fur.toml');
    // the section's settings reach the stream; -v on the command line
    await writeFile(config, `[stream]\nlog-file = ${JSON.stringify(log)}\nbatch = 2\n`);
    const s = await sender(t);
    const sending = s.send(plainSeries([0, 1, 2, 3, 4]));
    const r = await cli(['stream', s.endpoint, dest.url('append', 'logged'), '--config', config, '-v']);
    await sending;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /fur: committed batch 0: 2 frames/, '-v says every commit');
    const events = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { time: string; type: string; frames?: number; reason?: string });
    for (const e of events) assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const commits = events.filter((e) => e.type === 'commit');
    assert.deepEqual(commits.map((c) => c.frames), [2, 2, 1], 'batches of 2, from the config file');
    for (const c of commits) assert.ok(c.reason, 'each commit says why then');
    assert.equal(events[events.length - 1]!.type, 'done');
    assertFrames(await readStored(dest, 'append', 'logged'), [0, 1, 2, 3, 4]);

    // -q: nothing but warnings and errors
    const quiet = await sender(t);
    const more = quiet.send(plainSeries([0, 1]));
    const q = await cli(['stream', quiet.endpoint, dest.url('append', 'quiet'), '-q']);
    await more;
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stderr, '');
    assertFrames(await readStored(dest, 'append', 'quiet'), [0, 1]);
  });

  test('--spool over a slow destination (SFTP, 150 ms link): the stream is drained into a bounded spool, everything committed, the spool emptied', async (t) => {
    const dest = await openDest('sftp', t);
    const slow = await slowSftp(dest, 150, t);
    const spool = join(await scratch(t, 'fur-spool-'), 'spool');
    const frameBytes = ROWS * COLS * 2;
    const spoolMax = 40 * frameBytes;
    const s = await sender(t);
    const numbers = Array.from({ length: 300 }, (_, i) => i);
    const sending = s.send(plainSeries(numbers));
    const events: ProgressEvent[] = [];
    const summary = await stream(s.endpoint, slow.url('append', 'spooled'), {
      batch: 10, spool, spoolMax, passwordEnv: slow.flags[1], knownHosts: slow.knownHosts, onProgress: (e) => events.push(e),
    });
    await sending;
    assert.equal(summary.series[0]!.frames, 300);
    assert.ok(summary.spoolPeak! <= spoolMax && summary.spoolPeak! > 0, `the spool held at most ${summary.spoolPeak} bytes (--spool-max ${spoolMax})`);
    assert.ok(events.some((e) => e.type === 'warning' && e.tag === 'spool-full'), 'the sender outran the destination and was held back');
    assert.deepEqual(await readdir(spool), []);
    assertFrames(await readStored(dest, 'append', 'spooled'), numbers);
  });

  // The run is killed once it has received the whole series (its end is in the spool) and made
  // three commits: every frame sent is then fur's to store, so each must be stored exactly once.
  // Before the fix the second run took ~20 s per commit over this link (every string attribute
  // of the reopened file read from the server twice for each commit's sidecar) and looked hung.
  test('--spool: a run killed (SIGKILL) mid-series leaves its frames in the spool; the next run commits them, each frame once and in order, deleting each only once committed', async (t) => {
    const dest = await openDest('sftp', t);
    const slow = await slowSftp(dest, 150, t);
    const spool = join(await scratch(t, 'fur-spool-'), 'spool');
    await mkdir(spool);
    const s = await sender(t);
    const N = 400;
    const numbers = Array.from({ length: N }, (_, i) => i);
    const sending = s.send(plainSeries(numbers));
    const args = ['stream', s.endpoint, slow.url('append', 'killed'), '--spool', spool, '--batch', '10', ...slow.flags];
    const killed = await runKilledAfter(args, 3, { ready: appears(spool, '1.end', t) });
    assert.ok(killed.killed, killed.stderr);
    await sending;
    const spooled = (names: string[]) => names.filter((n) => n.endsWith('.frame')).map((n) => Number(/_frame_(\d+)\.frame$/.exec(n)![1]));
    const left = spooled(await readdir(spool));
    assert.ok(left.length > 0, 'frames received and not committed were in the spool at the kill');
    // nothing left the spool before its commit: a frame not in it is in the file
    const before = new Set((await readStored(dest, 'append', 'killed')).names);
    for (const n of numbers) if (!left.includes(n)) assert.ok(before.has(name(n)), `frame ${n} left the spool uncommitted`);

    const events: ProgressEvent[] = [];
    const early: string[] = [];
    const summary = await stream(s.endpoint, slow.url('append', 'killed'), {
      batch: 10, spool, passwordEnv: slow.flags[1], knownHosts: slow.knownHosts,
      onProgress: (e) => {
        events.push(e);
        // at each commit, every frame after those committed is still in the spool (read now,
        // before any later commit can release more)
        if (e.type !== 'commit') return;
        const still = new Set(spooled(readdirSync(spool)));
        for (const n of numbers.slice(e.totalFrames)) if (!still.has(n) && !before.has(name(n))) early.push(`frame ${n} (${e.totalFrames} committed)`);
      },
    });
    assert.deepEqual(early, [], 'frames left the spool before their commit');
    assert.ok(events.filter((e) => e.type === 'commit').length >= 30, 'the frames were committed in many commits, each checked');
    assert.ok(events.some((e) => e.type === 'warning' && e.tag === 'spool-resumed'));
    assert.equal(summary.series[0]!.frames + before.size, N);
    assert.deepEqual([summary.series[0]!.missing, summary.series[0]!.repeated], [[], []]);
    assert.deepEqual(await readdir(spool), []);
    assertFrames(await readStored(dest, 'append', 'killed'), numbers);
  });
});
