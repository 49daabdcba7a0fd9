/**
 * Fail fast where waiting cannot help (the real binary): before any connection has worked, a
 * closed port, a host name that does not resolve (RFC 2606 `.invalid`) and a rejected login end
 * the run with exit 1 and one line naming what to fix — within --connect-timeout (30 s by
 * default) for what may be a server restarting, at once for what an answer settles. Durations
 * that are zero, negative or not numbers are bad usage (exit 2), refused before connecting.
 * Nothing is written or deleted in any case.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { cli, furBin, localFrames, openDest, PASSWORD_ENV, readFlags, scratch, writeFrames, type Capture } from '../pipeline/helpers.js';
import { FTPS_PASSWORD_ENV, openFtpsDest, openS3Dest, useTestAwsEnv } from '../pipeline/s3-dest.js';

const C: Capture = { format: 'tiff', dtype: 'uint8', shape: [4, 5], seed: 91, frames: 3 };
const INVALID = 'archive.fur-test.invalid';

async function capture(t: Parameters<typeof scratch>[0]): Promise<string> {
  const cam = await scratch(t, 'fur-camera-');
  await writeFrames(cam, C, 0, C.frames);
  return cam;
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The run's one-line error: the last line of stderr. */
function lastLine(stderr: string): string {
  return stderr.trim().split('\n').at(-1) ?? '';
}

/** exit 1, the last line naming every `mention`, every frame still local */
async function assertRefused(r: { code: number | null; stderr: string }, cam: string, ...mentions: Array<string | RegExp>): Promise<string> {
  assert.equal(r.code, 1, r.stderr);
  const line = lastLine(r.stderr);
  assert.match(line, /^fur: /);
  for (const m of mentions) assert.ok(typeof m === 'string' ? line.includes(m) : m.test(line), `the message should name ${m}: ${line}`);
  assert.equal((await localFrames(cam)).length, C.frames, 'no source deleted');
  return line;
}

/** fur's own count of the seconds it tried, from "gave up after N s" */
function triedFor(line: string): number {
  const m = /gave up after (\d+) s without a working destination \(--connect-timeout; /.exec(line);
  assert.ok(m, `says how long it tried, and which option sets it: ${line}`);
  return Number(m[1]);
}

describe('before any connection has worked', () => {
  test('SFTP, a closed port: retried for --connect-timeout (30 s by default), then exit 1 naming the host as typed and the option', async (t) => {
    const cam = await capture(t);
    const dest = await openDest('sftp', t);
    const port = await closedPort();
    const r = await furBin(['upload', cam, `sftp://lab@127.0.0.1:${port}/run.h5`, '--delete-source', ...readFlags(C), ...dest.flags]);
    const line = await assertRefused(r, cam, `lab@127.0.0.1:${port}`, 'ECONNREFUSED', '--connect-timeout');
    assert.ok(triedFor(line) <= 30, line);
    assert.match(r.stderr, /retrying in/, 'a refused connection is retried (a server may be restarting)');
  });

  // a shorter --connect-timeout than the default, to keep the suite short; long enough for a
  // loaded machine to load the S3 SDK and hear the refusal within the first attempt
  test('FTPS and S3, a closed port: exit 1 naming the host and the option', async (t) => {
    useTestAwsEnv();
    const cam = await capture(t);
    const ftps = await openFtpsDest(t);
    const port = await closedPort();
    const f = await furBin(['upload', cam, `ftps://lab@127.0.0.1:${port}/run`, '--method', 'batches', '--connect-timeout', '10', '--delete-source', ...readFlags(C), ...ftps.flags]);
    triedFor(await assertRefused(f, cam, `127.0.0.1:${port}`, 'connection refused', '--connect-timeout'));
    const s3 = await openS3Dest(t);
    const s = await furBin(['upload', cam, s3.url('append', 'run'), '--endpoint', `https://127.0.0.1:${port}`, '--ca-file', s3.caFile, '--connect-timeout', '10', '--delete-source', ...readFlags(C)]);
    triedFor(await assertRefused(s, cam, `https://127.0.0.1:${port}`, 'connection refused', '--endpoint', '--connect-timeout'));
    assert.deepEqual(s3.server.keys(s3.bucket), []);
  });

  test('a host name that does not resolve: exit 1 naming the host (SFTP, FTPS, S3 endpoint)', async (t) => {
    useTestAwsEnv();
    const cam = await capture(t);
    const sftp = await openDest('sftp', t);
    const a = await furBin(['upload', cam, `sftp://lab@${INVALID}/run.h5`, '--delete-source', ...readFlags(C), ...sftp.flags]);
    // a resolver that answered says the name does not exist (no retry); one that did not answer is waited for
    await assertRefused(a, cam, `lab@${INVALID}:22`, /ENOTFOUND|EAI_AGAIN/, /spelling/);
    const ftps = await openFtpsDest(t);
    const b = await furBin(['upload', cam, `ftps://lab@${INVALID}/run`, '--method', 'batches', '--delete-source', ...readFlags(C), ...ftps.flags]);
    await assertRefused(b, cam, INVALID, /ENOTFOUND|EAI_AGAIN/);
    const s3 = await openS3Dest(t);
    const c = await furBin(['upload', cam, s3.url('append', 'run'), '--endpoint', `https://${INVALID}:9000`, '--ca-file', s3.caFile, '--delete-source', ...readFlags(C)]);
    await assertRefused(c, cam, `https://${INVALID}:9000`, /ENOTFOUND|EAI_AGAIN/, '--endpoint');
  });

  test('a rejected login ends the run at once: exit 1 naming the login and the setting (SFTP, FTPS, S3)', async (t) => {
    useTestAwsEnv();
    const cam = await capture(t);
    const env = { FUR_WRONG_SECRET: 'not-the-password' };
    const sftp = await openDest('sftp', t);
    const a = await furBin(['upload', cam, sftp.url('append', 'run'), '--delete-source', ...readFlags(C), ...sftp.flags.map((f) => (f === PASSWORD_ENV ? 'FUR_WRONG_SECRET' : f))], { env });
    await assertRefused(a, cam, /authentication as lab@127\.0\.0\.1:\d+ failed/, '$FUR_WRONG_SECRET');
    assert.doesNotMatch(a.stderr, /retrying/, 'not retried');
    const ftps = await openFtpsDest(t);
    const b = await furBin(['upload', cam, ftps.url('batches', 'run'), '--method', 'batches', '--delete-source', ...readFlags(C), ...ftps.flags.map((f) => (f === FTPS_PASSWORD_ENV ? 'FUR_WRONG_SECRET' : f))], { env });
    await assertRefused(b, cam, 'login as lab refused', '$FUR_WRONG_SECRET');
    assert.doesNotMatch(b.stderr, /retrying/, 'not retried');
    const s3 = await openS3Dest(t);
    const c = await furBin(['upload', cam, s3.url('append', 'run'), '--delete-source', ...readFlags(C), ...s3.flags], { env: { AWS_SECRET_ACCESS_KEY: 'not-the-secret-key-of-this-server' } });
    await assertRefused(c, cam, 'credentials were refused', 'AWS_SECRET_ACCESS_KEY');
    assert.doesNotMatch(c.stderr, /retrying/, 'not retried');
    for (const d of [sftp.root, ftps.root]) assert.deepEqual(await readdir(d).catch(() => []), [], 'nothing written');
    assert.deepEqual(s3.server.keys(s3.bucket), []);
  });
});

describe('durations that are zero, negative or not numbers: exit 2, naming the option, before connecting', () => {
  // the destination does not resolve: an attempt to connect would end in exit 1, not 2
  const dest = `sftp://lab@${INVALID}/run.h5`;
  const cases: Array<[string, string]> = [
    ['upload', '--give-up-after'], ['upload', '--connect-timeout'], ['upload', '--batch-seconds'],
    ['watch', '--idle'], ['watch', '--quiet-period'], ['watch', '--give-up-after'], ['verify', '--connect-timeout'],
  ];
  for (const [command, option] of cases) {
    test(`${command} ${option}`, async (t) => {
      const cam = await capture(t);
      for (const value of ['0', '-5', 'soon', '']) {
        const r = await cli([command, cam, dest, option, value, ...readFlags(C)]);
        assert.equal(r.code, 2, `${option} '${value}': ${r.stderr}`);
        assert.ok(r.lastLine.includes(`${option} '${value}'`), `names the option and the value: ${r.lastLine}`);
        assert.match(r.lastLine, /greater than 0/);
      }
      assert.equal((await localFrames(cam)).length, C.frames);
    });
  }

  test('--idle no longer than the quiet period is refused too', async (t) => {
    const cam = await capture(t);
    const r = await furBin(['watch', cam, dest, '--idle', '2', '--quiet-period', '2', ...readFlags(C)]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(lastLine(r.stderr), /--idle 2 must be longer than --quiet-period \(2 s\)/);
  });
});
