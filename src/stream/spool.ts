/**
 * A stream's spool: a local folder every received frame is written to before it is handed to its
 * capture, and deleted from once its commit is durable. The stream is drained into it while the
 * destination is slower than the sender, so the sender is held back only when the spool is full
 * (--spool-max); and a run killed mid-series leaves its frames there, for the next run to commit.
 *
 * A spooled frame is one file, `<series>_<name>.frame`: a 4-byte little-endian length, a JSON
 * head (series, destination, frame number, dtype, shape, encoding, attrs), then the frame's bytes.
 * It is written under a temporary name and renamed, so a kill leaves no half-written frame. The end
 * of a series is `<series>.end` (its destination, as JSON): a run killed while it committed the
 * last frames of a series leaves the series whole, and the next run ends it without the sender.
 * A series' header (the detector's configuration) is `<series>.header`, kept until the series is
 * stored: a next run that makes the file its killed predecessor never committed still has it.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FurError } from '../errors.js';
import type { Pushed } from '../pipeline/pushed.js';
import type { Dtype, FrameBlock, FrameEncoding } from '../source/frame.js';

export interface SpoolHead {
  series: number;
  destination: string;
  frame: number;
  name: string;
  dtype: Dtype;
  shape: number[];
  encoding?: FrameEncoding;
  attrs?: Record<string, unknown>;
}

export interface Spooled { head: SpoolHead; unit: Pushed }

const SUFFIX = '.frame';
const END = '.end';
const HEADER = '.header';

/** A series that ended (its end message came) while frames of it were still in the spool. */
export interface SpooledEnd { series: number; destination: string; path: string }

/** The header of a series, kept while the series is being stored. */
export interface SpooledHeader { series: number; destination: string; config: Record<string, unknown>; path: string }

export class Spool {
  /** bytes of frames in the spool now, and the most it held */
  private bytes = 0;
  peak = 0;
  private waiters: (() => void)[] = [];
  private full = false;

  private constructor(readonly dir: string, readonly max: number, private readonly warn: (tag: string, message: string) => void) {}

  /** Opens (or makes) the spool folder; the frames a previous run left there, in series and frame order. */
  static async open(dir: string, max: number, warn: (tag: string, message: string) => void): Promise<{ spool: Spool; left: Spooled[]; ends: SpooledEnd[]; headers: SpooledHeader[] }> {
    const spool = new Spool(dir, max, warn);
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new FurError('bad-option', `--spool ${dir}: cannot make the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path and permissions`, { setting: '--spool' });
    }
    const left: Spooled[] = [];
    const ends: SpooledEnd[] = [];
    const headers: SpooledHeader[] = [];
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      if (name.endsWith('.tmp')) await rm(path, { force: true }); // cut short by a kill: never whole
      if (name.endsWith(END)) ends.push({ ...(JSON.parse(await readFile(path, 'utf8')) as { series: number; destination: string }), path });
      if (name.endsWith(HEADER)) headers.push({ ...(JSON.parse(await readFile(path, 'utf8')) as Omit<SpooledHeader, 'path'>), path });
      if (!name.endsWith(SUFFIX)) continue;
      const bytes = await readFile(path);
      const { head, data } = parse(bytes, path);
      spool.add(data.length);
      left.push({ head, unit: spool.unit(path, head, data.length) });
    }
    left.sort((a, b) => a.head.series - b.head.series || a.head.frame - b.head.frame);
    return { spool, left, ends, headers };
  }

  /** The series ended: said in the spool until its frames are committed (see `done`). */
  end(series: number, destination: string): Promise<string> {
    return this.note(`${series}${END}`, { series, destination });
  }

  /** The series' header: kept in the spool until the series is stored. */
  header(series: number, destination: string, config: Record<string, unknown>): Promise<string> {
    return this.note(`${series}${HEADER}`, { series, destination, config });
  }

  /** A small JSON file, whole or not at all. */
  private async note(name: string, value: object): Promise<string> {
    const path = join(this.dir, name);
    await writeFile(`${path}.tmp`, JSON.stringify(value));
    await rename(`${path}.tmp`, path);
    return path;
  }

  /** Writes a frame to the spool once there is room: waits (the sender is then held back) while it is full. */
  async put(head: SpoolHead, data: Uint8Array): Promise<Pushed> {
    while (this.bytes > 0 && this.bytes + data.length > this.max) {
      if (!this.full) {
        this.full = true;
        this.warn('spool-full', `--spool ${this.dir} is full (${this.bytes} bytes, --spool-max ${this.max}): the destination is slower than the sender, which is now held back until frames are committed`);
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.full = false;
    const path = join(this.dir, `${head.series}_${head.name}${SUFFIX}`);
    const json = Buffer.from(JSON.stringify(head));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length, 0);
    await writeFile(`${path}.tmp`, Buffer.concat([len, json, data]));
    await rename(`${path}.tmp`, path);
    this.add(data.length);
    return this.unit(path, head, data.length);
  }

  private add(n: number): void {
    this.bytes += n;
    this.peak = Math.max(this.peak, this.bytes);
  }

  /** A spooled frame as its capture takes it: read back when wanted, deleted once committed. */
  private unit(path: string, head: SpoolHead, size: number): Pushed {
    return {
      name: head.name,
      size,
      load: async () => block(parse(await readFile(path), path)),
      release: async () => {
        await rm(path, { force: true });
        this.bytes -= size;
        const waiters = this.waiters;
        this.waiters = [];
        for (const w of waiters) w();
      },
    };
  }
}

function parse(bytes: Buffer, path: string): { head: SpoolHead; data: Uint8Array } {
  const n = bytes.length >= 4 ? bytes.readUInt32LE(0) : -1;
  let head: SpoolHead;
  try {
    if (n < 0 || 4 + n > bytes.length) throw new Error('too short');
    head = JSON.parse(bytes.subarray(4, 4 + n).toString('utf8')) as SpoolHead;
  } catch (e) {
    throw new FurError('spool-damaged', `${path}: not a frame fur spooled (${(e as Error).message}); move it out of the spool folder`, { file: path });
  }
  // a copy at offset 0: the frame's bytes after a head of any length are not aligned for their
  // elements (HDF5's checksum reads them as 32-bit words)
  return { head, data: new Uint8Array(bytes.subarray(4 + n)) };
}

function block({ head, data }: { head: SpoolHead; data: Uint8Array }): FrameBlock {
  return { file: head.name, name: head.name, dtype: head.dtype, shape: head.shape, count: 1, data, mtimeMs: Date.now(), attrs: head.attrs, encoding: head.encoding };
}
