/**
 * MLST replies as real servers send them (captured from ProFTPD 1.3.8, pyftpdlib 1.5.7 and
 * pure-ftpd 1.0.50 on Debian 12): a file, a folder, the root (pure-ftpd calls it `pdir`); and
 * which facts a FEAT line offers by default.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Client } from 'basic-ftp';
import { parseMlst, readFeatures } from '../../src/transport/ftps-features.js';

const at = Date.UTC(2026, 11, 7, 18, 44, 28);

test('MLST replies of ProFTPD, pyftpdlib and pure-ftpd: files, folders, the root', () => {
  assert.deepEqual(parseMlst('250-Start of list for /f.bin\n modify=20261207184428;perm=adfr;size=5;type=file;unique=FE00U23691B;UNIX.group=0;UNIX.mode=0644; /f.bin\n250 End of list'),
    { size: 5, mtimeMs: at, isDirectory: false });
  assert.deepEqual(parseMlst('250-Start of list for /\n modify=20261207184428;perm=flcdmpe;type=dir;unique=FE00U23690F;UNIX.mode=0755; /\n250 End of list'),
    { size: 0, mtimeMs: at, isDirectory: true });
  assert.deepEqual(parseMlst('250-Listing "/f.bin":\n modify=20261207184428;perm=radfwMT;size=5;type=file;unique=fe00g2368d9; /f.bin\n250 End MLST.'),
    { size: 5, mtimeMs: at, isDirectory: false });
  assert.deepEqual(parseMlst('250-Begin\n type=pdir;sizd=4096;modify=20261207184428;UNIX.mode=0755;UNIX.uid=10001;UNIX.gid=10001;unique=fe00g21e738; /\n250 End.'),
    { size: 0, mtimeMs: at, isDirectory: true });
  // a name with spaces and semicolons is after the facts' space; fractions of a second count
  assert.deepEqual(parseMlst('250-Begin\n type=file;size=12345678901;modify=20261207184428.25; /a b;c=d.h5\n250 End.'),
    { size: 12345678901, mtimeMs: at + 250, isDirectory: false });
});

test('MLST replies fur cannot use: a symbolic link, no size, no facts', () => {
  assert.equal(parseMlst('250-Begin\n type=OS.unix=symlink;modify=20261207184428; /link\n250 End.'), undefined);
  assert.equal(parseMlst('250-Begin\n type=file;modify=20261207184428; /f\n250 End.'), undefined);
  assert.equal(parseMlst('250 End.'), undefined);
});

test('FEAT: MLST with type and size is used; facts not sent by default are asked for', async () => {
  const feat = (mlst: string | undefined) => ({ features: async () => new Map(mlst === undefined ? [['SIZE', '']] : [['MLST', mlst]]) }) as unknown as Client;
  // ProFTPD, pure-ftpd: every fact fur reads is on by default
  assert.deepEqual(await readFeatures(feat('modify*;perm*;size*;type*;unique*;UNIX.group*;')), { mlst: true, mlstOpts: undefined });
  assert.deepEqual(await readFeatures(feat('type*;size*;sizd*;modify*;UNIX.mode*;')), { mlst: true, mlstOpts: undefined });
  assert.deepEqual(await readFeatures(feat('type*;size;perm*;')), { mlst: true, mlstOpts: 'OPTS MLST type;size;' });
  // vsftpd: none; a server without the size fact: the old way
  assert.deepEqual(await readFeatures(feat(undefined)), { mlst: false });
  assert.deepEqual(await readFeatures(feat('type*;modify*;')), { mlst: false });
});
