/**
 * FtpsPool's urgent borrowers (the lease): never queued behind transfers. The pool is given
 * connections that only know whether they are closed: lending is all it does with them here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Client } from 'basic-ftp';
import { FtpsPool } from '../../src/transport/ftps-pool.js';

function pool(max: number): { pool: FtpsPool; opened: () => number } {
  let n = 0;
  const open = async () => {
    const c = { id: ++n, closed: false, close: () => { c.closed = true; }, send: async () => undefined };
    return c as unknown as Client;
  };
  return { pool: new FtpsPool(open, max, 'ftps://lab/run'), opened: () => n };
}

/** a borrow that holds its connection until `end` is called, and says which one it got */
function hold(p: FtpsPool, urgent = false): { got: Promise<number>; end: () => void; done: Promise<void> } {
  let end!: () => void;
  let got!: (id: number) => void;
  const gotP = new Promise<number>((r) => { got = r; });
  const done = p.use(async (c) => {
    got((c as unknown as { id: number }).id);
    await new Promise<void>((r) => { end = r; });
  }, urgent);
  return { got: gotP, end: () => end(), done };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('FtpsPool', () => {
  it('lends an urgent borrower one connection beyond its size while transfers hold them all and more wait', async () => {
    const { pool: p, opened } = pool(1);
    const transfer = hold(p);
    assert.equal(await transfer.got, 1);
    const waiting = hold(p);
    const lease = hold(p, true);
    assert.equal(await lease.got, 2, 'the lease did not wait for the transfer');
    // the extra connection returned is not lent to the waiting transfer: it waits for the first
    lease.end();
    await lease.done;
    await settled();
    let waited = true;
    void waiting.got.then(() => { waited = false; });
    await settled();
    assert.equal(waited, true, 'a transfer took the connection kept for the urgent');
    transfer.end();
    await transfer.done;
    assert.ok([1, 2].includes(await waiting.got));
    waiting.end();
    await waiting.done;
    assert.equal(opened(), 2);
    await p.close();
  });

  it('puts an urgent borrower ahead of transfers already waiting', async () => {
    const { pool: p } = pool(1);
    const transfer = hold(p);
    await transfer.got;
    const extra = hold(p, true);
    await extra.got;
    // both over the limit now: a transfer waits, then the lease
    const order: string[] = [];
    const waiting = hold(p);
    void waiting.got.then(() => order.push('transfer'));
    const lease = hold(p, true);
    void lease.got.then(() => order.push('lease'));
    await settled();
    assert.deepEqual(order, []);
    transfer.end();
    await transfer.done;
    await lease.got;
    assert.deepEqual(order, ['lease']);
    // transfers together hold at most the pool's size, urgent borrowers' connections counted
    lease.end();
    extra.end();
    await Promise.all([lease.done, extra.done]);
    await waiting.got;
    assert.deepEqual(order, ['lease', 'transfer']);
    waiting.end();
    await waiting.done;
    await p.close();
  });
});
