/**
 * --config FILE / $FUR_CONFIG: the settings each command takes from a TOML file, under what the
 * command line gives; `fur config check` prints them, secrets masked; mistakes name the line.
 */
import assert from 'node:assert/strict';
import { cp, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCamera } from '../../src/source/camera.js';
import { assertCapture, cli, furBin, jsonLines, openDest, readStored, scratch, type Capture } from '../pipeline/helpers.js';

const C: Capture = { format: 'tiff', dtype: 'uint8', shape: [8, 10], seed: 5, frames: 6 };

async function config(t: Parameters<typeof scratch>[0], text: string): Promise<string> {
  const dir = await scratch(t, 'fur-config-');
  const path = join(dir, 'fur.toml');
  await writeFile(path, text);
  return path;
}

/** `key = value  # origin` lines of one section of `fur config check` */
function section(out: string, name: string): Map<string, { value: string; origin: string }> {
  const body = out.split(`[${name}]\n`)[1]?.split('\n\n')[0] ?? '';
  const m = new Map<string, { value: string; origin: string }>();
  for (const l of body.split('\n')) {
    const r = /^(\S+) = (.*?)\s+# (.*)$/.exec(l);
    if (r) m.set(r[1]!, { value: r[2]!, origin: r[3]! });
  }
  return m;
}

describe('config file', () => {
  test('fur config check prints each command\'s settings, where each came from, secrets masked', async (t) => {
    const path = await config(t, [
      '# lab defaults',
      'bwlimit = "10M"',
      'delete-source = true',
      'endpoint = "https://AKIAFUR:wJalrXUtnFEMI@minio.lab:9000"',
      '',
      '[watch]',
      'quiet-period = 5',
      'checksum = false',
      'bwlimit = "08:00,2M 19:00,off"',
    ].join('\n'));
    const r = await furBin(['config', 'check', path]);
    assert.equal(r.code, 0, r.stderr.toString());
    const out = r.stdout.toString();
    assert.ok(!out.includes('wJalrXUtnFEMI'), 'the secret is not printed');
    const upload = section(out, 'upload');
    const watch = section(out, 'watch');
    assert.deepEqual(upload.get('bwlimit'), { value: '"10M"', origin: 'line 2' });
    assert.deepEqual(upload.get('delete-source'), { value: 'true', origin: 'line 3' });
    assert.deepEqual(upload.get('endpoint'), { value: '"https://AKIAFUR:***@minio.lab:9000"', origin: 'line 4' });
    assert.deepEqual(upload.get('batch'), { value: '100', origin: 'default' });
    assert.equal(upload.get('quiet-period'), undefined, 'upload has no --quiet-period');
    // a section wins over the top
    assert.deepEqual(watch.get('bwlimit'), { value: '"08:00,2M 19:00,off"', origin: 'line 9' });
    assert.deepEqual(watch.get('quiet-period'), { value: '5', origin: 'line 7' });
    assert.deepEqual(watch.get('checksum'), { value: 'false', origin: 'line 8' });
    assert.deepEqual(section(out, 'verify').get('endpoint')?.origin, 'line 4');
    // $FUR_CONFIG is the default file
    const viaEnv = await furBin(['config', 'check'], { env: { FUR_CONFIG: path } });
    assert.equal(viaEnv.stdout.toString(), out);
  });

  test('an unknown key, section or value is an error naming it and its line (exit 2)', async (t) => {
    for (const [text, line, words] of [
      ['bwlimit = "10M"\n\n[upload]\ndelete-sources = true\n', 4, ["'delete-sources'"]],
      ['batch = 10\n[uplaod]\nbatch = 5\n', 2, ['[uplaod]']],
      ['method = "zip"\n', 1, ['method', 'append, batches, files']],
      ['delete-source = "yes"\n', 1, ['delete-source', 'true or']],
      ['batch = \n', 1, ['not valid TOML']],
    ] as const) {
      const path = await config(t, text);
      for (const args of [['config', 'check', path], ['upload', '.', 'file:///nonexistent/x.h5', '--config', path]]) {
        const r = await cli(args);
        assert.equal(r.code, 2, `${text}: ${r.stderr}`);
        assert.ok(r.lastLine.includes(`${path} line ${line}:`), `${text}: ${r.lastLine}`);
        for (const w of words) assert.ok(r.lastLine.includes(w), `${text}: names ${w}: ${r.lastLine}`);
      }
    }
    // a value a run refuses names the option and where it was set
    const path = await config(t, '\n[upload]\nbatch = "many"\n');
    const r = await cli(['config', 'check', path]);
    assert.equal(r.code, 2);
    assert.match(r.lastLine, new RegExp(`--batch 'many': not a number \\(set in ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 3\\)`));
  });

  test('the command line wins over the file, a section over the top; the run uses them', async (t) => {
    const cam = await scratch(t, 'fur-camera-');
    await runCamera({ dir: cam, format: 'tiff', dtype: 'uint8', shape: C.shape, seed: C.seed, frames: C.frames });
    for (const [text, flags, perCommit, deleted] of [
      // top only
      ['batch = 4\ndelete-source = false\n', [], [4, 2], false],
      // section over top
      ['batch = 4\n[upload]\nbatch = 2\n', [], [2, 2, 2], false],
      // command line over both
      ['batch = 4\ndelete-source = true\n[upload]\nbatch = 2\n', ['--batch', '3'], [3, 3], true],
    ] as const) {
      const dest = await openDest('file', t);
      const path = await config(t, `pattern = "*.tif"\n${text}`);
      const src = join(await scratch(t, 'fur-src-'), 'run');
      await cp(cam, src, { recursive: true });
      const r = await furBin(['upload', src, dest.url('append', 'run'), '--json', ...flags], { env: { FUR_CONFIG: path } });
      assert.equal(r.code, 0, r.stderr.toString());
      const commits = jsonLines(r.stdout).filter((e) => e.type === 'commit').map((e) => e.frames);
      assert.deepEqual(commits, [...perCommit], `${text} ${flags.join(' ')}`);
      assert.equal((await readdir(src)).length, deleted ? 0 : C.frames, 'delete-source as set');
      assertCapture(await readStored(dest, 'append', 'run'), C);
    }
  });
});
