import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { channelsFor, InFlightControl } from '../../src/transport/pool.js';

const MiB = 1024 * 1024;

/**
 * A link of `rate` bytes/ms and a round trip of `rtt` ms: whatever is allowed in flight comes
 * back at allowance / rtt, but never faster than the link; the sender always has data waiting.
 * Returns the allowance after `ms`.
 */
function drive(c: InFlightControl, link: { rate: number; rtt: number }, ms: number, demand = true): number {
  c.observeRtt(link.rtt);
  for (let t = 0; t <= ms; t += 5) {
    const rate = Math.min(link.rate, c.allowance / link.rtt);
    if (demand) c.noteLimited();
    c.acked(rate * 5, t);
  }
  return c.allowance;
}

describe('in-flight control', () => {
  const control = (initial?: number) => new InFlightControl({ floor: 4 * MiB, ceiling: 64 * MiB, initial });

  it('opens up to the bandwidth-delay product of a long, fat link, and not much beyond', () => {
    for (const link of [{ rate: 125e3, rtt: 50 }, { rate: 125e3, rtt: 100 }, { rate: 25e3, rtt: 100 }, { rate: 125e3, rtt: 10 }]) {
      const bdp = link.rate * link.rtt;
      const a = drive(control(), link, 5000);
      assert.ok(a >= bdp, `${JSON.stringify(link)}: allowance ${a} below the BDP ${bdp}`);
      assert.ok(a <= Math.max(4 * MiB, 3 * bdp), `${JSON.stringify(link)}: allowance ${a} far above the BDP ${bdp}`);
    }
  });

  it('shrinks an allowance that only builds a queue', () => {
    const link = { rate: 25e3, rtt: 100 }; // 200 Mbit/s, 100 ms: 2.5 MB in flight are enough
    const a = drive(control(60 * MiB), link, 5000);
    assert.ok(a <= 3 * link.rate * link.rtt, `allowance ${a}`);
    assert.ok(a >= link.rate * link.rtt);
  });

  it('does not keep a doubling that only queues, when bursty acknowledgements read above the link rate', () => {
    // a full 1 Gbit/s × 50 ms link whose acknowledgements come in waves: over an interval the
    // delivered rate reads up to 15% above or below the link's (the mean is the link's)
    const link = { rate: 125e3, rtt: 50 };
    const bdp = link.rate * link.rtt;
    const c = control();
    c.observeRtt(link.rtt);
    let sum = 0;
    let n = 0;
    for (let t = 0; t <= 120_000; t += 5) {
      const wave = 1 + 0.15 * Math.sin((2 * Math.PI * t) / 700);
      c.noteLimited();
      c.acked(Math.min(link.rate, c.allowance / link.rtt) * 5 * wave, t);
      if (t >= 20_000) { sum += c.allowance; n++; }
    }
    const mean = sum / n;
    assert.ok(mean >= bdp, `allowance ${mean} below the BDP ${bdp}: the link would idle`);
    assert.ok(mean <= 1.8 * bdp, `allowance ${(mean / 1e6).toFixed(1)} MB on average for a BDP of ${(bdp / 1e6).toFixed(1)} MB: a queue every commit waits behind`);
  });

  it('learns nothing while the sender, not the allowance, is what limits', () => {
    const c = control();
    drive(c, { rate: 125e3, rtt: 50 }, 5000, false);
    assert.equal(c.allowance, 4 * MiB);
  });

  it('keeps a fixed allowance fixed, and the smallest round trip seen', () => {
    const c = new InFlightControl({ floor: MiB, ceiling: 64 * MiB, fixed: 2 * MiB });
    drive(c, { rate: 125e3, rtt: 50 }, 2000);
    assert.equal(c.allowance, 2 * MiB);
    c.observeRtt(80);
    c.observeRtt(30);
    assert.equal(c.minRttMs, 30);
  });

  it('needs a channel per window of allowance', () => {
    assert.equal(channelsFor(8 * MiB, 2 * MiB, 16), 4);
    assert.equal(channelsFor(8 * MiB + 1, 2 * MiB, 16), 5);
    assert.equal(channelsFor(1, 2 * MiB, 16), 1);
    assert.equal(channelsFor(100 * MiB, 2 * MiB, 16), 16);
  });
});
