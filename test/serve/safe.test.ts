/**
 * The live view is safe by default (the real binary): bound beyond loopback, no request is
 * answered without the random token of the printed URL; on loopback, a request naming another
 * host (a web site rebinding its own name to 127.0.0.1) is refused; nothing can be changed
 * through it; and no credential (the SFTP password of --password-env, the AWS keys in the
 * environment) appears in the page, its files, /status, /events or the frame. The run itself
 * uploads to the in-process SFTP server, and its frames are read back with h5wasm.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { assertCapture, openDest, PASSWORD, readFlags, readStored, scratch, until, writeFrames, type Capture } from '../pipeline/helpers.js';
import { servedUrl, startServed } from '../../harness/served.js';
import { redactor, secretValues } from '../../src/serve/redact.js';

const C: Capture = { format: 'tiff', dtype: 'uint16', shape: [40, 50], seed: 23, frames: 6 };
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY';
const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const PATHS = ['/', '/status', '/events', '/frame.png', '/assets/page.js', '/assets/page.css', '/assets/uPlot.js'];

/** a GET that reads at most `max` bytes of the body (an event stream never ends) */
async function get(url: string, max = 1 << 22): Promise<{ status: number; body: Buffer }> {
  const stop = new AbortController();
  const r = await fetch(url, { signal: stop.signal });
  const parts: Buffer[] = [];
  let n = 0;
  const reader = r.body!.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(Buffer.from(value));
      n += value.length;
      // an event stream: its first status event is enough
      if (n >= max || (r.headers.get('content-type') === 'text/event-stream' && Buffer.concat(parts).includes('event: status\ndata: {'))) break;
    }
  } finally {
    stop.abort();
  }
  return { status: r.status, body: Buffer.concat(parts) };
}

/** a GET with the Host header as given (fetch will not send another host's name) */
function getWithHost(port: number, host: string, path = '/status'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { Host: host } }, (res) => { res.resume(); resolve(res.statusCode!); });
    req.on('error', reject);
    req.end();
  });
}

test('bound beyond loopback: the printed token is needed for everything; read-only; no credential is ever shown', async (t) => {
  const dest = await openDest('sftp', t);
  const cam = await scratch(t, 'fur-serve-cam-');
  const env = { ...process.env, AWS_SECRET_ACCESS_KEY: AWS_SECRET, AWS_ACCESS_KEY_ID: AWS_KEY_ID };
  // 127.0.0.2 is this machine too, but not a name fur treats as loopback: it is guarded as any other host
  const fur = await startServed(['watch', cam, dest.url('append', 'run'), '--stop-file', 'capture.done', '--batch', '3',
    ...readFlags(C), ...dest.flags, '--serve', '127.0.0.2:0'], env);
  t.after(() => { if (fur.child.exitCode === null) fur.child.kill('SIGKILL'); });
  const printed = new URL(fur.url);
  assert.equal(printed.hostname, '127.0.0.2');
  const token = printed.searchParams.get('token');
  assert.match(token ?? '', /^[A-Za-z0-9_-]{24}$/, fur.url);

  const bare = (path: string) => new URL(path, printed.origin).href;
  const wrong = (path: string) => servedUrl(`${printed.origin}/?token=${token!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`, path);
  for (const path of PATHS) {
    assert.equal((await get(bare(path))).status, 403, `${path} without the token`);
    assert.equal((await get(wrong(path))).status, 403, `${path} with a wrong token`);
    assert.equal((await get(servedUrl(fur.url, path, { token: '' }))).status, 403, `${path} with an empty token`);
  }
  assert.equal((await get(bare('/status') + `?token=${token}x`)).status, 403, 'a longer token');
  // read-only: nothing but GET and HEAD, even with the token
  for (const method of ['POST', 'PUT', 'DELETE']) {
    assert.equal((await fetch(servedUrl(fur.url, '/status'), { method })).status, 405, method);
  }

  await writeFrames(cam, C, 0, C.frames);
  await until(async () => JSON.parse((await get(servedUrl(fur.url, '/status'))).body.toString()).figures?.frames.committed === C.frames,
    120_000, 'every frame committed on /status');
  const seen: Record<string, Buffer> = {};
  for (const path of PATHS) {
    const r = await get(servedUrl(fur.url, path));
    assert.equal(r.status, 200, `${path} with the token`);
    seen[path] = r.body;
  }
  // what was looked at is the run's (so the absence below means something)
  const status = JSON.parse(seen['/status']!.toString());
  assert.equal(status.destination.url, dest.url('append', 'run'));
  assert.equal(status.frame.name, 'frame000006.tif');
  assert.ok(seen['/events']!.toString().includes(`"url":"${dest.url('append', 'run')}"`), 'the event stream carries the status');
  assert.deepEqual([...seen['/frame.png']!.subarray(1, 4)], [...Buffer.from('PNG')]);
  assert.ok(seen['/']!.toString().includes(`?token=${token}`), 'the page asks for its files with the token');
  for (const [path, body] of Object.entries(seen)) {
    for (const secret of [PASSWORD, AWS_SECRET, AWS_KEY_ID]) assert.ok(!body.includes(secret), `${path} shows a credential`);
  }

  await writeFile(join(cam, 'capture.done'), '');
  const exit = await fur.exit;
  assert.equal(exit.code, 0, fur.output());
  assert.ok(!fur.output().includes(PASSWORD), 'nor does fur print one');
  assertCapture(await readStored(dest, 'append', 'run'), C);
});

test('on loopback (the default) no token, but only this machine\'s names are answered', async (t) => {
  const dest = await openDest('file', t);
  const cam = await scratch(t, 'fur-serve-cam-');
  const fur = await startServed(['watch', cam, dest.url('append', 'run'), '--stop-file', 'capture.done', ...readFlags(C), '--serve', '0']);
  t.after(() => { if (fur.child.exitCode === null) fur.child.kill('SIGKILL'); });
  const u = new URL(fur.url);
  assert.equal(u.hostname, '127.0.0.1');
  assert.equal(u.search, '', 'no token on loopback');
  const port = Number(u.port);
  assert.equal(await getWithHost(port, `127.0.0.1:${port}`), 200);
  assert.equal(await getWithHost(port, `localhost:${port}`), 200);
  assert.equal(await getWithHost(port, `evil.example:${port}`), 403, 'a name that only points here');
  assert.equal(await getWithHost(port, `127.0.0.1:${port + 1}`), 403, 'another port');
  await writeFrames(cam, C, 0, 2);
  await writeFile(join(cam, 'capture.done'), '');
  assert.equal((await fur.exit).code, 0, fur.output());
  assertCapture(await readStored(dest, 'append', 'run'), { ...C, frames: 2 });
});

test('every string sent is masked: secret-named and --password-env values, URL passwords, private keys', () => {
  const env = { AWS_SECRET_ACCESS_KEY: AWS_SECRET, MY_PASSWORD: 'hunter22', LAB_PW: 'tiger-tiger', HOME: '/home/lab', SHORT_TOKEN: 'abc' };
  const secrets = secretValues(env, ['LAB_PW', 'NOT_SET']);
  assert.deepEqual(secrets, [AWS_SECRET, 'tiger-tiger', 'hunter22']);
  const redact = redactor(secrets);
  assert.equal(redact(`login failed for hunter22 with tiger-tiger at /home/lab (${AWS_SECRET})`), 'login failed for *** with *** at /home/lab (***)');
  assert.equal(redact('sftp://lab:pw@host/x.h5 and s3://b/p'), 'sftp://lab:***@host/x.h5 and s3://b/p');
  assert.equal(redact('key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY----- end'), 'key: [private key] end');
});
