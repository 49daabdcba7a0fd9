/**
 * Batches handed out as streams: where each ends (frames, --batch-seconds, the source's end, a
 * consumer that stops), that no item is lost or taken twice, and that the source is read no
 * further ahead than the consumer (what keeps an append run's memory flat).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchStreams, collect, type BatchStream, type SourceItem } from '../../src/pipeline/batch.js';

function item(i: number, frames = 1): SourceItem {
  const name = `frame${String(i).padStart(6, '0')}.raw`;
  return {
    file: { path: `/cam/${name}`, name, size: 8 * frames },
    block: { file: `/cam/${name}`, name, dtype: 'uint8', shape: [8], count: frames, data: new Uint8Array(8 * frames).fill(i), mtimeMs: 0 },
  };
}

/** A source of `n` items that counts how many were asked for; item k waits for gate(k) if given. */
function source(n: number, gate?: (k: number) => Promise<void> | undefined) {
  const counts = { pulled: 0 };
  const items = (async function* () {
    for (let k = 0; k < n; k++) {
      await gate?.(k);
      counts.pulled++;
      yield item(k);
    }
  })();
  return { items, counts };
}

async function nextBatch(it: AsyncGenerator<BatchStream>): Promise<BatchStream> {
  const r = await it.next();
  assert.ok(!r.done, 'a batch');
  return r.value;
}

const turns = async (n: number) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

test('batches of N frames, every item once and in order, the last batch short; taken is the batch', async () => {
  const { items } = source(23);
  const seen: number[] = [];
  const sizes: number[] = [];
  let index = 10;
  for await (const b of batchStreams(items, 5, 60, 10)) {
    assert.equal(b.index, index++);
    assert.equal(b.first.fileBytes, 8);
    const got = await collect(b);
    sizes.push(got.frames);
    assert.deepEqual(got.items.map((i) => i.file), b.taken.files);
    assert.equal(b.taken.bytes, 8 * got.frames);
    seen.push(...got.items.map((i) => i.block.data[0]!));
  }
  assert.deepEqual(sizes, [5, 5, 5, 5, 3]);
  assert.deepEqual(seen, Array.from({ length: 23 }, (_, k) => k));
});

test('the source is read no further ahead than the consumer takes, and the next batch waits for the one before', async () => {
  const { items, counts } = source(12);
  const it = batchStreams(items, 4, 60);
  const first = await nextBatch(it);
  assert.equal(counts.pulled, 1, 'only the first item, to know the batch exists');
  let handedOut = false;
  const second = nextBatch(it).then((b) => { handedOut = true; return b; });
  let taken = 0;
  for await (const _ of first.items) {
    taken++;
    await turns(5);
    assert.ok(counts.pulled - taken <= 1, `pulled ${counts.pulled} with ${taken} taken`);
    if (taken < 4) assert.equal(handedOut, false, 'the next batch is not handed out while this one is open');
  }
  const b2 = await second;
  assert.equal(b2.index, 1);
  assert.deepEqual((await collect(b2)).items.map((i) => i.block.data[0]), [4, 5, 6, 7]);
});

test('a consumer that stops (a failed commit) closes its batch; the next batch goes on from the first item not taken', async () => {
  const { items } = source(10);
  const it = batchStreams(items, 6, 60);
  const b1 = await nextBatch(it);
  const got: number[] = [];
  for await (const i of b1.items) {
    got.push(i.block.data[0]!);
    if (got.length === 2) break;
  }
  b1.close();
  assert.deepEqual(b1.taken.files.map((f) => f.name), [item(0).file.name, item(1).file.name]);
  const b2 = await nextBatch(it);
  assert.deepEqual((await collect(b2)).items.map((i) => i.block.data[0]), [2, 3, 4, 5, 6, 7]);
  // a batch closed before its consumer took anything ends too; its first item starts the next
  const b3 = await nextBatch(it);
  b3.close();
  assert.deepEqual(b3.taken.files, []);
  const b4 = await nextBatch(it);
  assert.deepEqual((await collect(b4)).items.map((i) => i.block.data[0]), [8, 9]);
  assert.equal((await it.next()).done, true);
});

test('--batch-seconds ends an open batch while the source waits; the awaited item starts the next batch', async () => {
  let release!: () => void;
  const stalled = new Promise<void>((r) => { release = r; });
  const { items } = source(5, (k) => (k === 3 ? stalled : undefined));
  const it = batchStreams(items, 100, 0.05);
  const b1 = await nextBatch(it);
  assert.deepEqual((await collect(b1)).items.map((i) => i.block.data[0]), [0, 1, 2], 'ended by the clock, not by frames');
  release();
  const b2 = await nextBatch(it);
  assert.deepEqual((await collect(b2)).items.map((i) => i.block.data[0]), [3, 4]);
  assert.equal((await it.next()).done, true);
});

test('limit, from the first item, ends batches sooner than --batch', async () => {
  const { items } = source(7);
  const sizes: number[] = [];
  for await (const b of batchStreams(items, 5, 60, 0, () => 2)) sizes.push((await collect(b)).frames);
  assert.deepEqual(sizes, [2, 2, 2, 1]);
});

test('a batch knows it is the last once the source has ended in it or right after it; one still open is not', async () => {
  const lasts = async (n: number, frames: number) => {
    const out: boolean[] = [];
    for await (const b of batchStreams(source(n).items, frames, 60)) {
      await collect(b);
      out.push(b.last);
    }
    return out;
  };
  assert.deepEqual(await lasts(10, 4), [false, false, true], 'ended within the batch');
  assert.deepEqual(await lasts(8, 4), [false, true], 'ended just after a full batch: seen without waiting');
  // a capture still running: the batch ends full, and nothing says the source is over
  let release!: () => void;
  const stalled = new Promise<void>((r) => { release = r; });
  const it = batchStreams(source(6, (k) => (k === 4 ? stalled : undefined)).items, 4, 60);
  const b1 = await nextBatch(it);
  assert.deepEqual((await collect(b1)).items.map((i) => i.block.data[0]), [0, 1, 2, 3]);
  assert.equal(b1.last, false);
  release();
  const b2 = await nextBatch(it);
  assert.deepEqual((await collect(b2)).items.map((i) => i.block.data[0]), [4, 5]);
  assert.equal(b2.last, true);
  assert.equal((await it.next()).done, true);
});
