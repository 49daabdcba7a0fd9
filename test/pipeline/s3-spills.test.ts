/**
 * Which spills the S3 append's journal keeps (pipeline/s3-spills.ts), on hand-made layouts: a
 * spill whose bytes all went into parts is dropped, one mostly dead has its live bytes stored
 * again, dead bytes kept stay under the limit, later spills win over earlier ones, and new bytes
 * are grouped by the part they wait for.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { groupExtents, planSpills, type Spill } from '../../src/pipeline/s3-spills.js';

const sp = (key: string, ...ranges: [number, number][]): Spill => ({ key, ranges });
const keys = (xs: Spill[]) => xs.map((x) => x.key);

describe('planSpills', () => {
  test('a spill every byte of which is in a sent part is dropped; mostly live ones are kept', () => {
    const p = planSpills([sp('a', [100, 200]), sp('b', [200, 300]), sp('c', [300, 400])], [], [[0, 220]], 1000);
    assert.deepEqual(keys(p.keep), ['b', 'c']);
    assert.deepEqual(keys(p.drop), ['a']);
    assert.deepEqual(p.again, []);
    assert.equal(p.dead, 20);
  });

  test('a spill at least half dead is dropped and its live bytes stored again', () => {
    const p = planSpills([sp('a', [100, 200], [500, 510])], [], [[0, 200]], 1000);
    assert.deepEqual(keys(p.keep), []);
    assert.deepEqual(keys(p.drop), ['a']);
    assert.deepEqual(p.again, [[500, 510]]);
    assert.equal(p.dead, 0);
  });

  test('bytes written again later (in a later spill or in the new ones) are dead in the earlier spill', () => {
    const p = planSpills([sp('a', [0, 100]), sp('b', [40, 60])], [[60, 100]], [], 1000);
    // a: [0,40) live, [40,100) dead (b and the new bytes cover it): more dead than live
    assert.deepEqual(keys(p.keep), ['b']);
    assert.deepEqual(p.again, [[0, 40]]);
  });

  test('mostly live spills are kept until their dead bytes pass the limit, most dead rewritten first', () => {
    const spills = [sp('a', [0, 100]), sp('b', [100, 200]), sp('c', [200, 300])];
    // sent: 30 of a, 40 of b, 10 of c
    const sent: [number, number][] = [[0, 30], [100, 140], [200, 210]];
    assert.deepEqual(keys(planSpills(spills, [], sent, 80).keep), ['a', 'b', 'c']);
    const p = planSpills(spills, [], sent, 45);
    assert.deepEqual(keys(p.keep), ['a', 'c']);
    assert.deepEqual(p.again, [[140, 200]]);
    assert.equal(p.dead, 40);
  });

  test('no more than maxKept spills stay: the smallest are stored again', () => {
    const spills = Array.from({ length: 5 }, (_, i) => sp(`s${i}`, [i * 100, i * 100 + 10 + i]));
    const p = planSpills(spills, [], [], 1000, 3);
    assert.deepEqual(keys(p.keep), ['s2', 's3', 's4']);
    assert.deepEqual(p.again, [[0, 10], [100, 111]]);
  });
});

describe('groupExtents', () => {
  test('bytes are split at the waiting parts\' bounds and the tail', () => {
    const bytes = new Uint8Array(100).map((_, i) => i);
    const held = [{ n: 3, offset: 40, size: 20 }, { n: 2, offset: 10, size: 20 }];
    const g = groupExtents([{ offset: 0, bytes }], held, 60);
    assert.deepEqual(g.map((x) => [x.part, x.extents.map((e) => [e.offset, e.bytes.length, e.bytes[0]])]), [
      [2, [[10, 20, 10]]],
      [3, [[40, 20, 40]]],
      [undefined, [[0, 10, 0], [30, 10, 30], [60, 40, 60]]],
    ]);
  });
});
