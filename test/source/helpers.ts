import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFurError, type FurErrorTag } from '../../src/errors.js';
import type { DecodedFrames } from '../../src/source/frame.js';
import { halfValue } from '../../src/source/pattern.js';

/** Fixtures live beside the sources; tests run from dist/test/source. */
export const FIXTURES = new URL('../../../test/source/fixtures/', import.meta.url).pathname;

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fur-source-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Asserts a FurError with this tag whose message names `file`. */
export function isError(tag: FurErrorTag, file: string) {
  return (e: unknown) => {
    assert.ok(isFurError(e, tag), `expected FurError(${tag}), got ${String(e)}`);
    assert.ok((e as Error).message.includes(file), `message should name ${file}: ${(e as Error).message}`);
    return true;
  };
}

/** Element values of little-endian frame data, as numbers (64-bit ints as bigint). */
export function values(block: Pick<DecodedFrames, 'dtype' | 'data'>): (number | bigint)[] {
  const v = new DataView(block.data.buffer, block.data.byteOffset, block.data.byteLength);
  const out: (number | bigint)[] = [];
  const get: Record<string, [number, (o: number) => number | bigint]> = {
    int8: [1, (o) => v.getInt8(o)], uint8: [1, (o) => v.getUint8(o)],
    int16: [2, (o) => v.getInt16(o, true)], uint16: [2, (o) => v.getUint16(o, true)],
    int32: [4, (o) => v.getInt32(o, true)], uint32: [4, (o) => v.getUint32(o, true)],
    int64: [8, (o) => v.getBigInt64(o, true)], uint64: [8, (o) => v.getBigUint64(o, true)],
    float16: [2, (o) => halfValue(v.getUint16(o, true))],
    float32: [4, (o) => v.getFloat32(o, true)], float64: [8, (o) => v.getFloat64(o, true)],
  };
  const [size, read] = get[block.dtype]!;
  for (let o = 0; o < block.data.length; o += size) out.push(read(o));
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds; fails after `ms` (a generous bound on outcomes, not a speed assertion). */
export async function until(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
