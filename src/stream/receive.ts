/**
 * `fur stream`: frames received from a detector or DAQ over ZeroMQ (a PULL socket connected to
 * the sender's PUSH), stored with openCapture — the same commits, reconnection and resume as
 * frames pushed by a program. One capture per series; frame numbers are checked as they come, and
 * a missing or repeated number is reported (a repeated frame is not stored a second time).
 *
 * While the destination is slower than the sender, append waits for room (maxBuffered), this
 * loop stops reading, and ZeroMQ's queues fill up to their high-water mark: the sender is held
 * back, nothing is dropped.
 */
import { rm } from 'node:fs/promises';
import { Pull } from 'zeromq';
import { openCapture, type Capture } from '../api/capture.js';
import type { StoreOptions, Summary } from '../api/options.js';
import { FurError } from '../errors.js';
import type { Dtype } from '../source/frame.js';
import type { InstrumentField } from '../pipeline/instrument.js';
import { EIGER_FRAME_VALUES, eigerInstrument } from './eiger-config.js';
import { decode, recognise, type StreamEvent, type StreamFormat } from './formats.js';
import { Spool, type Spooled, type SpooledEnd, type SpooledHeader } from './spool.js';

export interface StreamOptions extends StoreOptions {
  method?: 'append' | 'batches';
  /** the sender's format (default: recognised from the first message) */
  format?: StreamFormat;
  /** series to store before the run ends (default 1) */
  series?: number;
  /** store series until stopped (signal) */
  forever?: boolean;
  /** bytes of frames held in memory before reading waits (default 64 MiB) */
  maxBuffered?: number;
  /**
   * messages ZeroMQ queues before the sender is held back (default 16). Its queue is outside
   * maxBuffered: at ZeroMQ's own default of 1000, 2 MiB frames took 1.3-1.7 GB of memory there
   * while fur was busy; the stream is drained by fur (into memory or the spool), not by this queue
   */
  highWaterMark?: number;
  /**
   * a local folder every frame is written to until its commit is durable: the stream is drained
   * into it while the destination is slower, and a run killed mid-series leaves its frames there
   * for the next run with the same spool to commit
   */
  spool?: string;
  /** bytes the spool may hold before the sender is held back (default 4 GiB) */
  spoolMax?: number;
}

export interface SeriesSummary extends Summary {
  /** the series' id (the sender's, or its place in this run) */
  series: number;
  destination: string;
  /** frame numbers that never came, and those that came more than once */
  missing: number[];
  repeated: number[];
}

export interface StreamSummary {
  format?: StreamFormat;
  series: SeriesSummary[];
  /** the most bytes of frames the spool held at once (with a spool) */
  spoolPeak?: number;
}

const DEFAULT_SPOOL_MAX = 4 * 2 ** 30;
const DEFAULT_HIGH_WATER_MARK = 16;

/** The destination of one series: the URL as given for the only one, else named after the series. */
export function seriesDestination(destination: string, method: 'append' | 'batches', series: number, several: boolean): string {
  if (!several) return destination;
  if (method === 'batches') return `${destination.replace(/\/+$/, '')}/series_${series}`;
  const m = /^(.*?)(\.[^./]*)?$/.exec(destination)!;
  return `${m[1]}_series_${series}${m[2] ?? '.h5'}`;
}

/** One series being stored: its capture (opened with its first frame) and its frame numbers. */
class Series {
  capture?: Capture;
  next = 0;
  readonly missing: number[] = [];
  readonly repeated: number[] = [];
  /** frames the series announced (EIGER: nimages × ntrigger in its configuration) */
  expected?: number;
  /** the detector's configuration, as fields of the file's instrument group */
  readonly instrument?: InstrumentField[];
  /** the header kept in the spool while the series is stored */
  header?: string;

  constructor(readonly id: number, readonly destination: string, config: Record<string, unknown> | undefined) {
    const n = Number(config?.nimages) * Number(config?.ntrigger ?? 1);
    if (Number.isSafeInteger(n) && n > 0) this.expected = n;
    if (config) this.instrument = eigerInstrument(config);
  }
}

export async function stream(endpoint: string, destination: string, o: StreamOptions = {}): Promise<StreamSummary> {
  const method = o.method ?? 'append';
  const wanted = o.forever ? Infinity : (o.series ?? 1);
  if (!(wanted >= 1) || (wanted !== Infinity && !Number.isInteger(wanted))) throw new FurError('bad-option', `--series ${o.series}: must be a whole number ≥ 1`, { setting: '--series' });
  if (o.format !== undefined && o.format !== 'eiger' && o.format !== 'plain') throw new FurError('bad-option', `--format '${o.format}': use eiger or plain`, { setting: '--format' });
  const several = wanted > 1;
  const warn = (tag: string, message: string) => o.onProgress?.({ type: 'warning', tag, message });
  const sock = new Pull({ receiveHighWaterMark: o.highWaterMark ?? DEFAULT_HIGH_WATER_MARK, linger: 0 });
  const stop = () => sock.close();
  o.signal?.addEventListener('abort', stop, { once: true });
  let format = o.format;
  const spoolMax = o.spoolMax ?? DEFAULT_SPOOL_MAX;
  if (o.spool !== undefined && !(spoolMax > 0)) throw new FurError('bad-option', `--spool-max ${o.spoolMax}: must be a number of bytes > 0`, { setting: '--spool-max' });
  const spooled = o.spool === undefined ? undefined : await Spool.open(o.spool, spoolMax, warn);
  const done: SeriesSummary[] = [];
  let current: Series | undefined;
  let count = 0;

  const finish = async (s: Series): Promise<void> => {
    current = undefined;
    if (s.expected !== undefined && s.next < s.expected) {
      for (let n = s.next; n < s.expected; n++) s.missing.push(n);
      warn('frames-missing', `series ${s.id}: ended after ${s.next} of the ${s.expected} frames it announced (${describe(s.missing.slice(-(s.expected - s.next)))} never came)`);
    }
    const summary = s.capture ? await s.capture.close() : { files: 0, frames: 0, bytes: 0, seconds: 0, endReason: 'finished', kept: [] };
    if (s.header) await rm(s.header, { force: true });
    done.push({ ...summary, series: s.id, destination: s.destination, missing: s.missing, repeated: s.repeated });
  };

  const begin = (series: number | undefined, config?: Record<string, unknown>): Series => {
    const id = series ?? count + 1;
    count++;
    return new Series(id, seriesDestination(destination, method, id, several), config);
  };

  const frame = async (s: Series, ev: Extract<StreamEvent, { kind: 'frame' }>): Promise<void> => {
    if (ev.frame < s.next) {
      s.repeated.push(ev.frame);
      warn('frame-repeated', `series ${s.id}: frame ${ev.frame} came again after frame ${s.next - 1}; not stored twice`);
      return;
    }
    if (ev.frame > s.next) {
      const gap = Array.from({ length: ev.frame - s.next }, (_, i) => s.next + i);
      s.missing.push(...gap);
      warn('frames-missing', `series ${s.id}: ${describe(gap)} did not arrive (frame ${ev.frame} came after ${s.next === 0 ? 'none' : `frame ${s.next - 1}`})`);
    }
    s.next = ev.frame + 1;
    s.capture ??= await open(s.destination, ev, s.instrument);
    const name = ev.name ?? `frame_${String(ev.frame).padStart(6, '0')}`;
    if (!spooled) return s.capture.append(ev.data, { name, attrs: ev.attrs, encoding: ev.encoding });
    s.capture.check(name);
    const head = { series: s.id, destination: s.destination, frame: ev.frame, name, dtype: ev.dtype, shape: ev.shape, encoding: ev.encoding, attrs: ev.attrs };
    await s.capture.appendSpooled(await spooled.spool.put(head, ev.data));
  };

  // the capture gets the store's settings only: the stream's own (`format` is the sender's, not
  // a file format the capture would check) stay here
  const { format: _format, series: _series, forever: _forever, highWaterMark: _hwm, spool: _spool, spoolMax: _spoolMax, ...store } = o;
  /** `eiger`: the frames carry EIGER's dconfig times (known from the format, or a spooled header) */
  const open = (dest: string, layout: { dtype: Dtype; shape: number[] }, instrument?: InstrumentField[], eiger = format === 'eiger') => openCapture(dest, {
    ...store, method, dtype: layout.dtype, shape: layout.shape, signal: undefined,
    instrument, frameValues: eiger ? EIGER_FRAME_VALUES : undefined,
  });

  /**
   * What a killed run left in the spool goes first: each series' frames to its capture, and a
   * series whose end had come is ended.
   */
  const resume = async (left: Spooled[], ends: SpooledEnd[], headers: SpooledHeader[]): Promise<void> => {
    const ended = async (s: Series) => {
      const end = ends.find((e) => e.series === s.id && e.destination === s.destination);
      if (!end) return;
      await finish(s);
      await rm(end.path, { force: true });
    };
    for (const { head, unit } of left) {
      if (current && (current.id !== head.series || current.destination !== head.destination)) {
        await ended(current);
        if (current) await finish(current);
      }
      if (!current) {
        const header = headers.find((h) => h.series === head.series && h.destination === head.destination);
        current = new Series(head.series, head.destination, header?.config);
        current.header = header?.path;
        count++;
        current.capture = await open(head.destination, head, current.instrument, header !== undefined);
      }
      current.next = head.frame + 1;
      // committed before the kill, or not: the destination says which
      if (current.capture!.committed.has(head.name)) await unit.release!();
      else await current.capture!.appendSpooled(unit);
    }
    if (left.length) warn('spool-resumed', `--spool ${o.spool}: ${left.length} frames a previous run received are committed first`);
    if (current) await ended(current);
    // an end whose frames were all committed before the kill: nothing is left to do for it (nor
    // for a header whose series has no frame left)
    for (const e of ends) await rm(e.path, { force: true });
    for (const h of headers) if (h.path !== current?.header) await rm(h.path, { force: true });
  };

  try {
    if (spooled) await resume(spooled.left, spooled.ends, spooled.headers);
    try {
      sock.connect(endpoint);
    } catch (e) {
      throw new FurError('bad-url', `${endpoint}: not a ZeroMQ endpoint fur can connect to (${(e as Error).message}); give tcp://host:port or ipc:///path`, { url: endpoint });
    }
    while (done.length < wanted) {
      let parts: Buffer[];
      try {
        parts = await sock.receive();
      } catch (e) {
        if (sock.closed) break; // stopped
        throw e;
      }
      format ??= recognise(parts);
      if (format === undefined) {
        warn('stream-message', `stream: a message in neither format (EIGER stream v1, plain) was skipped; --format eiger|plain says which to expect`);
        continue;
      }
      let ev: StreamEvent;
      try {
        ev = decode(format, parts);
      } catch (e) {
        // a message fur cannot store ends no capture: it is said, and the next one is read
        warn('stream-message', (e as Error).message);
        continue;
      }
      if (ev.kind === 'header') {
        if (current) {
          warn('series-unfinished', `series ${current.id}: a new series began before it ended; it is closed with what came`);
          await finish(current);
          if (done.length >= wanted) break;
        }
        current = begin(ev.series, ev.config);
        if (spooled && ev.config) current.header = await spooled.spool.header(current.id, current.destination, ev.config);
      } else if (ev.kind === 'frame') {
        current ??= begin(ev.series);
        await frame(current, ev);
      } else if (ev.kind === 'end' && current) {
        const s = current;
        const end = spooled && s.capture ? await spooled.spool.end(s.id, s.destination) : undefined;
        await finish(s);
        if (end) await rm(end, { force: true });
      }
    }
    if (current) await finish(current);
  } finally {
    o.signal?.removeEventListener('abort', stop);
    if (!sock.closed) sock.close();
    // a capture left open by a failure is closed: what it committed stays, its error is the run's
    if (current?.capture) await current.capture.close().catch(() => undefined);
  }
  return { format, series: done, spoolPeak: spooled?.spool.peak };
}

/** frame numbers as ranges: "frames 3-5, 9" */
function describe(ns: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ns.length;) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    out.push(i === j ? `${ns[i]}` : `${ns[i]}-${ns[j]}`);
    i = j + 1;
  }
  return `${ns.length === 1 ? 'frame' : 'frames'} ${out.join(', ')}`;
}
