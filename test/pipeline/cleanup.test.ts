/**
 * Deleting sources: a file is deleted only as it was when fur read it. One that changed since (an
 * instrument that paused mid-file longer than the quiet period, then wrote on) holds bytes that
 * were never committed, so it is kept and named.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { deleteSources } from '../../src/pipeline/cleanup.js';
import type { CompletedFile } from '../../src/source/watch.js';

const dir = mkdtempSync(join(tmpdir(), 'fur-cleanup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function completed(name: string, bytes: Buffer): CompletedFile {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  const st = statSync(path);
  return { path, name, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs, by: 'quiet', outOfOrder: false };
}

test('a source unchanged since it was read is deleted; one that grew since is kept and named', async () => {
  const same = completed('frame000001.raw', Buffer.alloc(1000, 1));
  const grown = completed('frame000002.raw', Buffer.alloc(1000, 2));
  appendFileSync(grown.path, Buffer.alloc(500, 3));
  const warnings: string[] = [];
  const n = await deleteSources([same, grown], (m) => warnings.push(m));
  assert.equal(n, 1);
  assert.equal(existsSync(same.path), false);
  assert.equal(existsSync(grown.path), true);
  assert.equal(statSync(grown.path).size, 1500);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /frame000002\.raw: committed, but changed since it was read \(1000 → 1500 bytes\); kept/);
});

test('a source replaced by another file of the same size (a new inode) is kept', async () => {
  const f = completed('frame000003.raw', Buffer.alloc(64, 4));
  rmSync(f.path);
  writeFileSync(f.path, Buffer.alloc(64, 5));
  const warnings: string[] = [];
  assert.equal(await deleteSources([f], (m) => warnings.push(m)), 0);
  assert.equal(existsSync(f.path), true);
  assert.equal(warnings.length, 1);
});
