/**
 * FTP carries one transfer at a time per control connection, so several files in flight need
 * several connections. The pool opens connections on demand up to `max`, lends each to one
 * operation at a time, and drops a connection whose socket failed (the next borrower gets a
 * fresh one). The first failure to connect is kept: while it stands, waiting borrowers get it.
 *
 * An urgent borrower (the lease, which must be renewed in time) goes ahead of those waiting, and
 * may hold one connection more than `max` when all are lent: it never waits for a transfer.
 */
import type { Client } from 'basic-ftp';
import { FurError } from '../errors.js';

export class FtpsPool {
  private idle: Client[] = [];
  private busy = new Set<Client>();
  private opening = 0;
  private waiters: Array<{ resolve: (c: Client) => void; reject: (e: unknown) => void; urgent: boolean }> = [];
  private closed = false;

  constructor(private readonly open: () => Promise<Client>, readonly max: number, private readonly url: string) {}

  /** connections open now (idle or lent) */
  get size(): number { return this.idle.length + this.busy.size; }

  /** Lend a connection to `fn`; a connection whose socket died during `fn` is not reused. */
  async use<T>(fn: (c: Client) => Promise<T>, urgent = false): Promise<T> {
    const c = await this.acquire(urgent);
    try {
      return await fn(c);
    } finally {
      this.release(c);
    }
  }

  /** Add a connection that is already open (the one made to check the destination). */
  adopt(c: Client): void {
    this.busy.add(c);
    this.release(c);
  }

  private acquire(urgent = false): Promise<Client> {
    if (this.closed) return Promise.reject(closedError(this.url));
    // others hold at most `max` at once; the one more is kept for the urgent
    const limit = this.max + (urgent ? 1 : 0);
    while (this.idle.length && this.busy.size < limit) {
      const c = this.idle.pop()!;
      if (!c.closed) { this.busy.add(c); return Promise.resolve(c); }
    }
    if (this.size + this.opening < limit) {
      this.opening++;
      return this.open().then((c) => {
        this.opening--;
        if (this.closed) { c.close(); throw closedError(this.url); }
        this.busy.add(c);
        return c;
      }, (e) => {
        this.opening--;
        // nobody else will open a connection for the waiters if none is lent out: tell them
        if (this.busy.size === 0 && this.opening === 0) for (const w of this.waiters.splice(0)) w.reject(e);
        throw e;
      });
    }
    return new Promise((resolve, reject) => {
      const w = { resolve, reject, urgent };
      if (urgent) this.waiters.unshift(w);
      else this.waiters.push(w);
    });
  }

  private release(c: Client): void {
    this.busy.delete(c);
    // the one connection beyond `max` is not lent to a borrower who is not urgent
    const w = this.busy.size < this.max || this.waiters[0]?.urgent ? this.waiters.shift() : undefined;
    if (c.closed) {
      // replace the dead connection for whoever waits
      if (w) this.acquire(w.urgent).then(w.resolve, w.reject);
      return;
    }
    if (this.closed) { c.close(); return; }
    if (w) { this.busy.add(c); w.resolve(c); } else this.idle.push(c);
  }

  /** Quit every idle connection (politely) and close lent ones once returned. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(closedError(this.url));
    const idle = this.idle.splice(0);
    await Promise.all(idle.map(async (c) => {
      await Promise.race([c.send('QUIT').catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
      c.close();
    }));
    for (const c of this.busy) c.close();
  }
}

function closedError(url: string): FurError<'destination-closed'> {
  return new FurError('destination-closed', `${url} was used after it was closed (a bug in the caller)`, { url });
}
