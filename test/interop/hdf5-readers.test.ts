/**
 * The writer's catalogue (test/hdf5/cases.ts) read by HDF5 1.10.8: h5py describes every file —
 * final state and the snapshots taken after each commit — and it is compared, element by
 * element and attribute by attribute, with what the case says a reader must see; h5dump walks
 * every file, values included, without an error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertSameStructure } from '../support/h5json.js';
import { catalogue, runCase, type Expected } from '../hdf5/cases.js';
import { runOk } from '../../harness/run.js';
import { H5DUMP, h5env } from './support/h5py.js';
import { h5dumpAll, h5pyBatch, type BatchResult } from './support/hdf5-batch.js';

const work = mkdtempSync(join(tmpdir(), 'fur-hdf5-readers-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Written { name: string; file: string; expected: Expected }

describe('HDF5 writer catalogue, read by h5py and h5dump (HDF5 1.10.8)', () => {
  const written: Written[] = [];
  let described: BatchResult[] = [];

  before(async () => {
    for (const c of catalogue()) {
      const res = await runCase(c, work);
      const file = res.path ?? join(work, `${c.name}.h5`);
      if (!res.path) writeFileSync(file, res.bytes);
      written.push({ name: c.name, file, expected: res.expected });
      res.snapshots.forEach((s, i) => {
        const f = join(work, `${c.name}.snap${i}.h5`);
        writeFileSync(f, s.bytes);
        written.push({ name: `${c.name} ${s.label}`, file: f, expected: s.expected });
      });
    }
    described = await h5pyBatch(written.map((w) => w.file));
  });

  it('h5py reads every file as the case describes it, value by value', () => {
    assert.ok(written.length >= 30, `${written.length} files`);
    for (const [i, w] of written.entries()) {
      const d = described[i]!;
      if (!d.ok) assert.fail(`${w.name}: h5py could not ${d.stage} it: ${d.error}`);
      assert.match(d.doc.reader, /HDF5 1\.10\./);
      try {
        assertSameStructure(w.expected.doc, d.doc);
      } catch (e) {
        throw new Error(`${w.name}: ${(e as Error).message}`, { cause: e });
      }
    }
  });

  it('h5dump reads every file, values included, without an error', async () => {
    assert.equal(await h5dumpAll(written.map((w) => w.file)), written.length);
  });

  it('h5dump prints the values and properties fur wrote (spot check)', async () => {
    const w = written.find((x) => x.name === 'fill-values')!;
    // /fill0_int16: 11 rows × 3 in chunks of 4 × 2; rows 5.. never written; fill value -7
    const r = await runOk(H5DUMP, ['-p', '-d', '/fill0_int16', w.file], { env: h5env() });
    const out = r.stdout.toString('utf8');
    assert.match(out, /DATASPACE\s+SIMPLE \{ \( 11, 3 \) \/ \( 11, 3 \) \}/);
    assert.match(out, /CHUNKED \( 4, 2 \)/);
    assert.match(out, /FILL_TIME H5D_FILL_TIME_IFSET\s+VALUE\s+-7/);
    for (let row = 5; row <= 10; row++) assert.match(out, new RegExp(`\\(${row},0\\): -7, -7, -7`));
    assert.doesNotMatch(out, /\(4,0\): -7, -7, -7/);
  });
});
