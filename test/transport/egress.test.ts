/**
 * --bwlimit: rclone's notation, the timetable, and the shared token bucket, on a virtual clock
 * (time passes only when the bucket makes a writer wait), so the rates are exact, not timed.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isFurError } from '../../src/errors.js';
import { parseBandwidth, parseRate } from '../../src/transport/bwlimit.js';
import { Egress, type Clock } from '../../src/transport/egress.js';
import { openDestination } from '../../src/transport/open.js';
import { scratch, sftpFixture } from './helpers.js';

const MiB = 1024 * 1024;

/** Time moves only in sleep: a writer that waits 100 ms finds the clock 100 ms later. */
function virtualClock(start: number): Clock & { t: number } {
  const c = {
    t: start,
    now: () => c.t,
    sleep: async (ms: number) => { c.t += ms; },
  };
  return c;
}

/** Send `total` bytes in `chunk`-sized writes, one after the other; the clock time of each grant. */
async function send(egress: Egress, clock: { now(): number }, total: number, chunk: number): Promise<{ at: number; n: number }[]> {
  const grants: { at: number; n: number }[] = [];
  for (let sent = 0; sent < total; sent += chunk) {
    const n = Math.min(chunk, total - sent);
    const turn = egress.take(n);
    if (turn) await turn;
    grants.push({ at: clock.now(), n });
  }
  return grants;
}

describe('--bwlimit notation', () => {
  it('reads rates as rclone does: binary units, bare numbers in KiB/s, off', () => {
    assert.equal(parseRate('10M'), 10 * MiB);
    assert.equal(parseRate('512k'), 512 * 1024);
    assert.equal(parseRate('100'), 100 * 1024);
    assert.equal(parseRate('1.5G'), 1.5 * 1024 * MiB);
    assert.equal(parseRate('2MiB/s'), 2 * MiB);
    assert.equal(parseRate('off'), undefined);
    for (const bad of ['fast', '10X', '-5M', '0']) {
      assert.throws(() => parseBandwidth(bad), (e) => isFurError(e, 'bad-option') && e.message.includes('--bwlimit'), bad);
    }
    for (const bad of ['08:00,10M 25:00,off', '8h,10M', '08:00,10M 08:00,off', '08:00,ten']) {
      assert.throws(() => parseBandwidth(bad), (e) => isFurError(e, 'bad-option') && e.message.startsWith(`--bwlimit ${JSON.stringify(bad)}`), bad);
    }
  });

  it('a timetable gives each time of day the last entry at or before it, the day before wrapping round', () => {
    const s = parseBandwidth('08:00,10M 19:00,off 12:30,512k');
    const at = (h: number, m: number, sec = 0) => s.rateAt(new Date(2026, 10, 21, h, m, sec).getTime());
    assert.equal(at(7, 59, 59), undefined, 'before the first entry: the previous day\'s last');
    assert.equal(at(8, 0), 10 * MiB);
    assert.equal(at(12, 29, 59), 10 * MiB);
    assert.equal(at(12, 30), 512 * 1024);
    assert.equal(at(18, 59, 59), 512 * 1024);
    assert.equal(at(19, 0), undefined);
    assert.equal(at(23, 59, 59), undefined);
    const day = parseBandwidth('08:00,10M 19:00,1M');
    assert.equal(day.rateAt(new Date(2026, 10, 21, 3, 0).getTime()), 1024 * 1024);
  });
});

describe('egress', () => {
  it('holds writes of any size to the rate: 100 MiB at 10M take 10 s', async () => {
    for (const chunk of [32 * 1024, 256 * 1024, 5 * MiB]) {
      const clock = virtualClock(0);
      const egress = new Egress(parseBandwidth('10M'), clock);
      const grants = await send(egress, clock, 100 * MiB, chunk);
      const seconds = grants[grants.length - 1]!.at / 1000;
      // the last write goes once the ones before it are paid for; the bucket starts empty
      const expected = (100 * MiB - chunk) / (10 * MiB);
      assert.ok(Math.abs(seconds - expected) <= 0.02 * expected, `chunk ${chunk}: ${seconds} s, expected ${expected}`);
      assert.equal(egress.sent, 100 * MiB);
    }
  });

  it('counts without holding back when there is no limit', async () => {
    const clock = virtualClock(0);
    const egress = new Egress(undefined, clock);
    const grants = await send(egress, clock, 50 * MiB, MiB);
    assert.equal(grants[grants.length - 1]!.at, 0);
    assert.equal(egress.sent, 50 * MiB);
    assert.equal(egress.limit(), undefined);
  });

  it('switches rate at the timetable\'s boundary', async () => {
    // 11:59:50 at 1 MiB/s, then from 12:00 at 4 MiB/s
    const start = new Date(2026, 10, 21, 11, 59, 50).getTime();
    const noon = new Date(2026, 10, 21, 12, 0, 0).getTime();
    const clock = virtualClock(start);
    const egress = new Egress(parseBandwidth('08:00,1M 12:00,4M 20:00,off'), clock);
    assert.equal(egress.limit(), MiB);
    const grants = await send(egress, clock, 30 * MiB, 64 * 1024);
    const before = grants.filter((g) => g.at < noon).reduce((n, g) => n + g.n, 0);
    const after = grants.filter((g) => g.at >= noon);
    const afterBytes = after.reduce((n, g) => n + g.n, 0);
    const afterSeconds = (after[after.length - 1]!.at - noon) / 1000;
    // 10 s at 1 MiB/s before noon, the rest at 4 MiB/s
    assert.ok(Math.abs(before - 10 * MiB) <= 0.02 * 10 * MiB, `before noon: ${before / MiB} MiB`);
    const rate = afterBytes / afterSeconds / MiB;
    assert.ok(Math.abs(rate - 4) <= 0.04 * 4, `after noon: ${rate} MiB/s`);
    assert.equal(egress.limit(), 4 * MiB);
  });

  it('lets the limit go at the boundary to off', async () => {
    const start = new Date(2026, 10, 21, 19, 59, 58).getTime();
    const clock = virtualClock(start);
    const egress = new Egress(parseBandwidth('08:00,1M 20:00,off'), clock);
    const grants = await send(egress, clock, 20 * MiB, 64 * 1024);
    const end = grants[grants.length - 1]!.at;
    // 2 s at 1 MiB/s, then the rest at once (the waiting writer sees the new period within a second)
    assert.ok(end - start <= 3000, `done ${(end - start) / 1000} s after the start`);
    assert.equal(egress.limit(), undefined);
  });

  it('counts every byte an SFTP upload and a local write send, through one egress', async () => {
    const fx = await sftpFixture();
    const { dir, cleanup } = await scratch();
    try {
      const egress = new Egress(parseBandwidth('off'));
      const sftp = await openDestination(fx.server.url('u', '/'), { ...fx.options, egress });
      const local = await openDestination(dir, { egress });
      const data = Buffer.alloc(3 * MiB + 17, 7);
      for (const d of [sftp, local]) {
        const f = await d.openWrite('x.bin', { truncate: true });
        await f.write(0, data);
        await f.close();
        await d.close();
      }
      assert.equal(egress.sent, 2 * data.length);
      assert.deepEqual(await readFile(join(fx.root, 'x.bin')), data);
      assert.deepEqual(await readFile(join(dir, 'x.bin')), data);
    } finally {
      await fx.cleanup();
      await cleanup();
    }
  });
});
