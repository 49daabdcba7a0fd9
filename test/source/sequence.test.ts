import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFurError } from '../../src/errors.js';
import { compareNames, compileGlob, listSequence, sequenceNumber, sortSequence } from '../../src/source/sequence.js';
import { tempDir } from './helpers.js';

test('glob: *, ?, sets, ranges, negation, escapes; whole name only', () => {
  const m = (p: string, n: string) => compileGlob(p)(n);
  assert.ok(m('frame*.tif', 'frame0001.tif'));
  assert.ok(!m('frame*.tif', 'frame0001.tif.tmp'));
  assert.ok(!m('frame*.tif', 'xframe1.tif'));
  assert.ok(m('img_?.npy', 'img_7.npy'));
  assert.ok(!m('img_?.npy', 'img_10.npy'));
  assert.ok(m('img_[0-4]*.npy', 'img_3x.npy'));
  assert.ok(!m('img_[0-4]*.npy', 'img_5.npy'));
  assert.ok(m('img_[!0-4].npy', 'img_5.npy'));
  assert.ok(!m('img_[!0-4].npy', 'img_2.npy'));
  assert.ok(m('a[]]b', 'a]b'));
  assert.ok(m('a\\*b', 'a*b') && !m('a\\*b', 'axb'));
  assert.ok(m('x.(1)+', 'x.(1)+'), 'regex characters are literal');
  assert.ok(m('*', '.hidden'));
  for (const bad of ['', 'dir/*.tif', 'a[bc', 'a\\']) {
    assert.throws(() => compileGlob(bad, '--pattern'), (e) => isFurError(e, 'bad-pattern') && e.message.includes('--pattern'), bad);
  }
});

test('sequence number: last number, ignoring an extension with letters', () => {
  assert.equal(sequenceNumber('frame0007.tif'), '7');
  assert.equal(sequenceNumber('run2_img10.h5'), '10');
  assert.equal(sequenceNumber('scan.003'), '3');
  assert.equal(sequenceNumber('img_000.npy'), '0');
  assert.equal(sequenceNumber('dark.tif'), undefined);
  assert.equal(sequenceNumber('t20240101123000123456.raw'), '20240101123000123456');
});

test('order is numeric, not text or time; ties by name; unnumbered last', () => {
  assert.ok(compareNames('img_2.npy', 'img_10.npy') < 0);
  assert.deepEqual(
    sortSequence(['img_10.npy', 'dark.npy', 'img_2.npy', 'img_1.npy', 'img_01.npy', 'flat.npy', 'img_100000000000000000001.npy', 'img_99999999999999999999.npy']),
    ['img_01.npy', 'img_1.npy', 'img_2.npy', 'img_10.npy', 'img_99999999999999999999.npy', 'img_100000000000000000001.npy', 'dark.npy', 'flat.npy'],
  );
});

test('listSequence selects files by pattern in order and skips folders', async (t) => {
  const dir = await tempDir(t);
  for (const n of ['frame10.tif', 'frame9.tif', 'frame1.tif', 'notes.txt']) await writeFile(join(dir, n), 'x');
  await mkdir(join(dir, 'frame5.tif'));
  assert.deepEqual(await listSequence(dir, 'frame*.tif'), ['frame1.tif', 'frame9.tif', 'frame10.tif']);
  await assert.rejects(listSequence(join(dir, 'missing')), (e) => isFurError(e, 'unreadable-dir') && e.message.includes('missing'));
});
