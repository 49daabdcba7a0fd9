/**
 * One writer per destination, through the real `fur` binary: two runs started together on one
 * destination (every method; file://, SFTP, FTPS and S3 in-process servers), the lease of a run
 * killed with SIGKILL, of a run on another host that stopped renewing, `--take-over`, a run whose
 * lease is taken from it, and a destination that cannot be written.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FurError, isFurError } from '../../src/errors.js';
import { Lease, leaseTicket } from '../../src/pipeline/lease.js';
import { cameraFileName } from '../../src/source/camera.js';
import type { Destination } from '../../src/transport/destination.js';
import { FileDestination } from '../../src/transport/file.js';
import {
  assertCapture, FUR_BIN, furBin, jsonLines, localFrames, METHODS, noRetry, openDest, readFlags, readStored, runKilledAfter, scratch, until,
  watchFlags, writeFrames, type Capture, type Method, type Stored,
} from './helpers.js';
import { openFtpsDest, openS3Dest, useTestAwsEnv } from './s3-dest.js';

useTestAwsEnv();

const A: Capture = { format: 'tiff', dtype: 'uint8', shape: [12, 16, 3], seed: 81, frames: 12 };
/** the other capture: the same file names, other pixels */
const B: Capture = { ...A, seed: 82 };

type T = Parameters<typeof scratch>[0];

/** A destination of one kind, as the CLI names it, and what a run stored there. */
interface Where {
  url(method: Method, name: string): string;
  flags: string[];
  stored(method: Method, name: string): Promise<Stored>;
  /** names of lease records (and takeover tokens) left at the destination */
  leases(): Promise<string[]>;
}

async function where(t: T, kind: 'file' | 'sftp' | 'ftps' | 's3' | 's3-claims'): Promise<Where> {
  if (kind === 's3' || kind === 's3-claims') {
    const d = await openS3Dest(t, kind === 's3-claims' ? { conditionalWrites: false } : {});
    return {
      url: d.url, flags: d.flags, stored: (m, n) => d.stored(m, n),
      leases: async () => d.server.keys(d.bucket).filter((k) => k.includes('fur-lease')),
    };
  }
  const d = kind === 'ftps' ? await openFtpsDest(t) : await openDest(kind, t);
  return {
    url: d.url, flags: d.flags, stored: (m, n) => readStored(d, m, n),
    leases: async () => (await readdir(d.root, { recursive: true })).filter((n) => n.includes('fur-lease')),
  };
}

interface Running { child: ChildProcess; exited: Promise<number | null>; stderr(): string; stdout(): string }

function start(args: string[]): Running {
  const child = spawn(process.execPath, [FUR_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, exited, stderr: () => err, stdout: () => out };
}

const lastLine = (s: string) => s.split('\n').filter((l) => l.trim() !== '').at(-1) ?? '';

/** Puts a lease record as another fur on another machine would have left it (whole, as a rename does). */
async function foreignLease(path: string, o: { renewedAgoSec: number; ttlSec: number; seq?: number }): Promise<void> {
  const renewed = new Date(Date.now() - o.renewedAgoSec * 1000).toISOString();
  const json = JSON.stringify({ fur: 'lease', host: 'beamline-7', machine: 'elsewhere', pid: 4242, run: 'feedfacecafebeef', started: '2026-12-01T08:00:00.000Z', renewed, seq: o.seq ?? 3, ttlSec: o.ttlSec });
  await writeFile(`${path}.tmp`, `${json}\n`.padEnd(1024, ' '));
  await rename(`${path}.tmp`, path);
}

const KINDS = ['file', 'sftp', 'ftps', 's3', 's3-claims'] as const;

describe('two runs started together on one destination', () => {
  for (const kind of KINDS) {
    for (const method of METHODS) {
      if (kind === 'ftps' && method === 'append') continue; // refused before connecting (ftps.test.ts)
      if (kind === 's3-claims' && method !== 'batches') continue;
      test(`${method} → ${kind}: exactly one writes, the other is refused naming it; every frame is stored intact or still local`, async (t) => {
        const d = await where(t, kind);
        const [camA, camB] = [await scratch(t, 'fur-camera-a-'), await scratch(t, 'fur-camera-b-')];
        await writeFrames(camA, A, 0, A.frames);
        await writeFrames(camB, B, 0, B.frames);
        const url = d.url(method, 'run');
        // watches, so that whichever takes the lease still holds it when the other asks: they end on the stop file
        const args = (cam: string) => ['watch', cam, url, '--method', method, '--batch', '4', '--delete-source', ...readFlags(A), ...watchFlags(), ...d.flags];
        const runs = [start(args(camA)), start(args(camB))];
        try {
          // a generous bound on an outcome (without a lease both would wait for the stop file)
          let timer: NodeJS.Timeout | undefined;
          const first = await Promise.race([
            ...runs.map((r, i) => r.exited.then((code) => ({ i, code }))),
            new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('neither run ended: both are writing')), 120_000); }),
          ]).finally(() => clearTimeout(timer));
          assert.equal(first.code, 1, `the first to end is the refused one: ${runs[first.i]!.stderr()}`);
          const [loser, winner] = [runs[first.i]!, runs[1 - first.i]!];
          const message = lastLine(loser.stderr());
          assert.match(message, new RegExp(`^fur: .* is in use by another fur run \\(host ${hostname()}, pid ${winner.child.pid}, started \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC, renewed \\d+ s ago\\);.*--take-over$`));
          assert.equal(loser.stderr().split('\n').filter((l) => l.trim()).length, 1, `one line: ${loser.stderr()}`);
          for (const cam of [camA, camB]) await writeFile(join(cam, 'capture.done'), '');
          assert.equal(await winner.exited, 0, winner.stderr());
          const [wonCam, lostCam] = first.i === 0 ? [camB, camA] : [camA, camB];
          const [won] = first.i === 0 ? [B, A] : [A, B];
          assertCapture(await d.stored(method, 'run'), won);
          assert.deepEqual(await localFrames(wonCam), [], 'the winner deleted what it committed');
          assert.equal((await localFrames(lostCam)).length, A.frames, 'the refused run kept every file');
          assert.deepEqual(await d.leases(), [], 'the lease is released at the end');
        } finally {
          for (const r of runs) r.child.kill('SIGKILL');
        }
      });
    }
  }
});

describe('stale leases', () => {
  for (const kind of ['file', 'sftp'] as const) {
    test(`${kind}: a run restarted after SIGKILL takes over at once the lease its dead process left, and finishes`, async (t) => {
      const d = await where(t, kind);
      const cam = await scratch(t, 'fur-camera-');
      const c: Capture = { ...A, frames: 200 };
      await writeFrames(cam, c, 0, c.frames);
      const args = ['upload', cam, d.url('append', 'run'), '--batch', '4', '--delete-source', ...readFlags(c), ...d.flags];
      const killed = await runKilledAfter(args, 2);
      assert.ok(killed.killed, 'killed in the middle of the run');
      assert.equal((await d.leases()).length, 1, 'a killed run leaves its lease');
      const r = await furBin(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`took over the lease of host ${hostname()}, pid \\d+, started .* \\(that process has ended\\)`));
      assert.doesNotMatch(r.stderr, /watching it/, 'no wait: the process is provably gone');
      assertCapture(await d.stored('append', 'run'), c);
      assert.deepEqual(await localFrames(cam), []);
      assert.deepEqual(await d.leases(), []);
    });
  }

  for (const token of ['of a process that has ended', 'never written'] as const) {
    test(`a run killed while taking over leaves its token (${token}): the next run clears it${token === 'never written' ? ' once it stayed unchanged for a time to live' : ' at once'}, and finishes`, async (t) => {
      const d = await openDest('file', t);
      const cam = await scratch(t, 'fur-camera-');
      const c: Capture = { ...A, frames: 200 };
      await writeFrames(cam, c, 0, c.frames);
      const args = ['upload', cam, d.url('append', 'run'), '--batch', '4', '--delete-source', '--lease-ttl', '3', ...readFlags(c), ...d.flags];
      assert.ok((await runKilledAfter(args, 2)).killed, 'killed in the middle of the run');
      // what a second run killed between creating its takeover token and replacing the record leaves
      const lease = join(d.root, '.run.h5.fur-lease');
      const stale = await readFile(lease);
      const tokenPath = `${lease}.takeover-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`;
      await writeFile(tokenPath, token === 'never written' ? '' : stale);
      const r = await furBin(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`took over the lease of host ${hostname()}, pid \\d+, started .* \\(that process has ended\\)`));
      if (token === 'never written') assert.match(r.stderr, /a fur run began taking over the lease and has not finished; watching for 3 s/);
      else assert.doesNotMatch(r.stderr, /watching/, 'no wait: the taker is provably gone');
      assertCapture(await readStored(d, 'append', 'run'), c);
      assert.deepEqual(await localFrames(cam), []);
      assert.deepEqual((await readdir(d.root)).filter((n) => n.includes('fur-lease')), [], 'no record or token left');
    });
  }

  test('two runs restarted together after a crash: exactly one takes over the dead run\'s lease', async (t) => {
    const d = await where(t, 'sftp');
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, A, 0, A.frames);
    const args = ['watch', cam, d.url('append', 'run'), '--batch', '4', '--delete-source', ...readFlags(A), ...watchFlags(), ...d.flags];
    const killed = await runKilledAfter(args, 1);
    assert.ok(killed.killed, 'killed while watching');
    assert.equal((await d.leases()).length, 1);
    // the operator restarts it, twice
    const runs = [start(args), start(args)];
    try {
      const first = await Promise.race(runs.map((r, i) => r.exited.then((code) => ({ i, code }))));
      assert.equal(first.code, 1, runs[first.i]!.stderr());
      const winner = runs[1 - first.i]!;
      assert.match(lastLine(runs[first.i]!.stderr()), new RegExp(`(is in use by another fur run \\(host ${hostname()}, pid ${winner.child.pid},|another fur run \\(host ${hostname()}, pid ${winner.child.pid}, .*\\) is taking over the lease)`));
      await until(() => winner.stderr().includes('took over the lease'), 60_000, 'the takeover');
      await writeFile(join(cam, 'capture.done'), '');
      assert.equal(await winner.exited, 0, winner.stderr());
    } finally {
      for (const r of runs) r.child.kill('SIGKILL');
    }
    assertCapture(await d.stored('append', 'run'), A);
    assert.deepEqual(await localFrames(cam), []);
    assert.deepEqual(await d.leases(), []);
  });

  test('a lease another host stopped renewing is watched for its time to live, then taken over', async (t) => {
    const d = await openDest('file', t);
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, A, 0, A.frames);
    await foreignLease(join(d.root, '.run.h5.fur-lease'), { renewedAgoSec: 3600, ttlSec: 2 });
    const r = await furBin(['upload', cam, d.url('append', 'run'), '--delete-source', ...readFlags(A)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /the lease is held by host beamline-7, pid 4242, started 2026-12-01 08:00:00 UTC, last renewed 60 min ago; watching it for 2 s/);
    assert.match(r.stderr, /took over the lease of host beamline-7, pid 4242, .* \(not renewed for 2 s\)/);
    assertCapture(await readStored(d, 'append', 'run'), A);
    assert.deepEqual(await readdir(d.root).then((n) => n.filter((x) => x.includes('fur-lease'))), []);
  });

  test('a lease that looks stale but is renewed while watched is not taken: refused, nothing written', async (t) => {
    const d = await openDest('file', t);
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, A, 0, A.frames);
    const lease = join(d.root, '.run.h5.fur-lease');
    // a holder whose clock is an hour behind: its record looks old, but it is renewed
    await foreignLease(lease, { renewedAgoSec: 3600, ttlSec: 30 });
    const run = start(['upload', cam, d.url('append', 'run'), '--delete-source', ...readFlags(A)]);
    await until(() => run.stderr().includes('watching it for 30 s'), 60_000, 'the run to watch the lease');
    await foreignLease(lease, { renewedAgoSec: 3590, ttlSec: 30, seq: 4 });
    assert.equal(await run.exited, 1, run.stderr());
    assert.match(lastLine(run.stderr()), /is in use by another fur run \(host beamline-7, pid 4242, started 2026-12-01 08:00:00 UTC/);
    assert.equal((await localFrames(cam)).length, A.frames);
    assert.deepEqual(await readdir(d.root), ['.run.h5.fur-lease'], 'nothing written');
  });

  test('a live lease of another host is refused at once; --take-over takes it', async (t) => {
    const d = await openDest('sftp', t);
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, A, 0, A.frames);
    await mkdir(d.local('batches', 'run'));
    const lease = join(d.local('batches', 'run'), '.fur-lease');
    await foreignLease(lease, { renewedAgoSec: 1, ttlSec: 30 });
    const args = ['upload', cam, d.url('batches', 'run'), '--method', 'batches', '--delete-source', ...readFlags(A), ...d.flags];
    let r = await furBin(args);
    assert.equal(r.code, 1, r.stderr);
    assert.match(lastLine(r.stderr), /^fur: sftp:\/\/.* is in use by another fur run \(host beamline-7, pid 4242, started 2026-12-01 08:00:00 UTC, renewed \d+ s ago\); .* run again with --take-over$/);
    assert.doesNotMatch(r.stderr, /watching/);
    assert.deepEqual(await readdir(d.local('batches', 'run')), ['.fur-lease'], 'nothing written');
    assert.equal((await localFrames(cam)).length, A.frames, 'nothing deleted');
    r = await furBin([...args, '--take-over']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /taking over the lease of host beamline-7, pid 4242, .* \(--take-over\)/);
    assertCapture(await readStored(d, 'batches', 'run'), A);
    assert.deepEqual((await readdir(d.local('batches', 'run'))).filter((n) => n.includes('fur-lease')), []);
  });
});

describe('a run that loses its lease', () => {
  test('stops before its next commit: later frames stay local, committed ones are intact, exit 1 naming who took it', async (t) => {
    const d = await openDest('file', t);
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, A, 0, 4);
    const run = start(['watch', cam, d.url('append', 'run'), '--batch', '4', '--delete-source', '--lease-ttl', '15', '--json', ...readFlags(A), ...watchFlags()]);
    try {
      await until(() => run.stdout().includes('"type":"deleted"'), 60_000, 'the first commit');
      // another run takes the lease (as --take-over would)
      const lease = join(d.root, '.run.h5.fur-lease');
      assert.match(await readFile(lease, 'utf8'), /"fur":"lease"/);
      await foreignLease(lease, { renewedAgoSec: 0, ttlSec: 30 });
      await until(() => run.stdout().includes('taken over'), 60_000, 'the run to find its lease taken');
      await writeFrames(cam, A, 4, 8);
      assert.equal(await run.exited, 1, run.stderr());
    } finally {
      run.child.kill('SIGKILL');
    }
    assert.match(lastLine(run.stderr()), /lease was taken over by another fur run \(host beamline-7, pid 4242, .*\); stopped before the next commit/);
    assert.equal(jsonLines(run.stdout()).filter((e) => e.type === 'commit').length, 1);
    assertCapture(await readStored(d, 'append', 'run'), { ...A, frames: 4 });
    assert.deepEqual(await localFrames(cam), [4, 5, 6, 7].map((i) => cameraFileName(i + 1, 'tiff')), 'later frames stay local');
    assert.match(await readFile(join(d.root, '.run.h5.fur-lease'), 'utf8'), /beamline-7/, 'the other run\'s lease is left alone');
  });
});

describe('a destination that cannot be written', () => {
  for (const kind of ['sftp', 's3'] as const) {
    test(`${kind}: watch exits 1 at start, before any frame is taken, naming the destination and the cause`, async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      await writeFrames(cam, A, 0, 3);
      let url: string;
      let flags: string[];
      if (kind === 'sftp') {
        const d = await openDest('sftp', t, { readOnly: true });
        url = d.url('append', 'run');
        flags = d.flags;
      } else {
        const d = await openS3Dest(t);
        d.server.deny({ action: 'PutObject' });
        url = d.url('append', 'run');
        flags = d.flags;
      }
      // no --idle, no stop file: only a failure at start ends this run
      const r = await furBin(['watch', cam, url, '--delete-source', ...noRetry(), ...readFlags(A), ...flags]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(lastLine(r.stderr), new RegExp(`^fur: cannot write to ${url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: .*(permission denied|access denied)`, 'i'));
      assert.equal((await localFrames(cam)).length, 3);
    });
  }
});

/** A folder destination whose lease record can be made unreachable, as a link that went down. */
async function flaky(dir: string): Promise<{ dest: Destination; down: { on: boolean } }> {
  const dest = await FileDestination.open(dir);
  const down = { on: false };
  const fail = () => Promise.reject(new FurError('connection-lost', 'the link is down (test)', {}));
  return {
    down,
    dest: new Proxy(dest, {
      get(target, prop) {
        if (prop !== 'exclusive') { const v = Reflect.get(target, prop); return typeof v === 'function' ? v.bind(target) : v; }
        return (path: string) => {
          const r = target.exclusive(path);
          return {
            create: (b: Uint8Array) => (down.on ? fail() : r.create(b)),
            read: () => (down.on ? fail() : r.read()),
            replace: (b: Uint8Array) => (down.on ? fail() : r.replace(b)),
            remove: () => (down.on ? fail() : r.remove()),
          };
        };
      },
    }),
  };
}

describe('Lease', () => {
  const quiet = () => undefined;

  test('one that cannot be renewed within its time to live fences the run (lease-expired), and is left for the next run', async (t) => {
    const dir = await scratch(t, 'fur-lease-');
    const { dest, down } = await flaky(dir);
    const ticket = leaseTicket({ ttlMs: 6000 });
    const lease = await Lease.acquire(dest, '.run.h5.fur-lease', { where: 'here', ticket, notice: quiet });
    lease.check();
    down.on = true;
    // the lease's timer does not keep a process alive (a run's own work does): this test's wait does
    const alive = setInterval(() => undefined, 1000);
    const why = await lease.fenced.finally(() => clearInterval(alive));
    assert.equal(why.tag, 'lease-expired');
    assert.throws(() => lease.check(), (e: unknown) => isFurError(e, 'lease-expired') && /^here: could not renew this run's lease within 6 s.*; stopped before the next commit/.test(e.message));
    down.on = false;
    await lease.release();
    assert.deepEqual(await readdir(dir), ['.run.h5.fur-lease'], 'past its time it may be another run\'s: not removed');
    // the same run, reconnected: its own record, no longer vouched for, is taken back at once
    const notices: string[] = [];
    const again = await Lease.acquire(dest, '.run.h5.fur-lease', { where: 'here', ticket, notice: (m) => notices.push(m) });
    again.check();
    assert.match(notices.join('\n'), /took over the lease of host .* \(this run, before it lost its connection\)/);
    await again.release();
    assert.deepEqual(await readdir(dir), []);
  });

  test('a run that reconnects within its time to live carries on with its own lease', async (t) => {
    const dir = await scratch(t, 'fur-lease-');
    const dest = await FileDestination.open(dir);
    const ticket = leaseTicket({ ttlMs: 60_000 });
    const first = await Lease.acquire(dest, '.fur-lease', { where: 'here', ticket, notice: quiet });
    // the connection is lost (nothing released); the next attempt of the same run
    const notices: string[] = [];
    const second = await Lease.acquire(dest, '.fur-lease', { where: 'here', ticket, notice: (m) => notices.push(m) });
    second.check();
    assert.deepEqual(notices, []);
    // another run is refused meanwhile
    await assert.rejects(Lease.acquire(dest, '.fur-lease', { where: 'here', ticket: leaseTicket(), notice: quiet }), (e: unknown) => isFurError(e, 'lease-held'));
    await second.release();
    await first.release();
    assert.deepEqual(await readdir(dir), []);
  });
});

describe('--lease-ttl', () => {
  for (const bad of ['0', '-5', 'soon']) {
    test(`'${bad}' is bad usage: exit 2, naming the option`, async (t) => {
      const cam = await scratch(t, 'fur-camera-');
      const r = await furBin(['upload', cam, `file://${cam}/out.h5`, '--lease-ttl', bad]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(lastLine(r.stderr), /^fur: --lease-ttl/);
    });
  }
});

describe('Ctrl-C', () => {
  test('the lease is released when a watch ends on SIGINT', async (t) => {
    const d = await openDest('sftp', t);
    const cam = await scratch(t, 'fur-camera-');
    await writeFrames(cam, A, 0, 4);
    const run = start(['watch', cam, d.url('files', 'run'), '--method', 'files', '--json', ...readFlags(A), ...watchFlags(), ...d.flags]);
    try {
      await until(() => (run.stdout().match(/"type":"commit"/g) ?? []).length >= 4, 60_000, 'the commits');
      assert.deepEqual(await readdir(join(d.root, 'run')).then((n) => n.filter((x) => x.includes('fur-lease'))), ['.fur-lease']);
      run.child.kill('SIGINT');
      assert.equal(await run.exited, 0, run.stderr());
    } finally {
      run.child.kill('SIGKILL');
    }
    assert.deepEqual((await readdir(join(d.root, 'run'))).filter((x) => x.includes('fur-lease')), []);
  });
});
