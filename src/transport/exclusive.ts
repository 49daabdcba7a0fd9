/**
 * Exclusive records (Destination.exclusive), two ways:
 *  - PlainRecord: one ordinary file, for destinations whose open can refuse an existing file (a
 *    local or mounted folder: O_EXCL; SFTP: CREAT|EXCL): created by that open, overwritten in
 *    place by an open that refuses a missing file (a record someone removed is never brought
 *    back), read and removed like any file.
 *  - ClaimsRecord: for destinations with no exclusive create at all (FTP; S3 stores that ignore
 *    If-None-Match). The record is a folder of claims: a run writes its own claim (a name no one
 *    else uses), then lists the folder, and holds the record only if its claim is the only one.
 *    Two runs cannot both see themselves alone, as long as a listing shows every file whose
 *    store finished before the listing began (one FTP server's directory; S3 listings are
 *    strongly consistent): whichever listed second sees the claim the other wrote before
 *    listing. Runs that see each other withdraw and try again after a random pause; one that
 *    then finds a claim standing gives way. No order of claims is trusted, only "alone".
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isFurError } from '../errors.js';
import type { Destination, ExclusiveRecord, RemoteFile } from './destination.js';

/** Records are small; a read takes this much at most. */
const MAX_RECORD = 64 << 10;

/**
 * Opens the record for writing. `create`: only if nothing is there, else rejects with a FurError
 * tagged `exists`; `existing`: only if it is there, else rejects tagged `not-found`.
 */
export type RecordOpen = (mode: 'create' | 'existing') => Promise<RemoteFile>;

/** A record's bytes, or null when it is not there. */
async function readRecord(dest: Destination, path: string): Promise<Uint8Array | null> {
  let f: RemoteFile;
  try {
    f = await dest.openRead(path);
  } catch (e) {
    if (isFurError(e, 'not-found')) return null;
    throw e;
  }
  try {
    return await f.read(0, MAX_RECORD);
  } finally {
    await f.close().catch(() => undefined);
  }
}

export class PlainRecord implements ExclusiveRecord {
  constructor(private readonly dest: Destination, readonly path: string, private readonly open: RecordOpen) {}

  async create(data: Uint8Array): Promise<boolean> {
    let f: RemoteFile;
    try {
      f = await this.open('create');
    } catch (e) {
      if (isFurError(e, 'exists')) return false;
      throw e;
    }
    try {
      await this.fill(f, data);
    } catch (e) {
      // made but not filled: leave nothing that looks held
      await this.dest.remove(this.path).catch(() => undefined);
      throw e;
    }
    return true;
  }

  read(): Promise<Uint8Array | null> {
    return readRecord(this.dest, this.path);
  }

  async replace(data: Uint8Array): Promise<boolean> {
    let f: RemoteFile;
    try {
      f = await this.open('existing');
    } catch (e) {
      if (isFurError(e, 'not-found')) return false;
      // ProFTPD with AllowOverwrite off refuses the open as a plain permission error when the
      // file is not held open elsewhere: on a record this run made in this very folder, that is
      // the server's policy, not the file's mode, and removing + creating it may still be allowed
      if (isFurError(e, 'overwrite-refused') || isFurError(e, 'permission-denied')) return this.recreate(data, e);
      throw e;
    }
    await this.fill(f, data);
    return true;
  }

  /**
   * A server that lets no file be opened for writing once it exists (ProFTPD's AllowOverwrite
   * off, its default) still lets it be removed and created: the record is renewed that way. A
   * record already gone stays gone; in the one round trip between the two, another run may find
   * it absent and create its own — then this run has lost it (false), never shared it.
   */
  private async recreate(data: Uint8Array, refused: unknown): Promise<boolean> {
    // removes of a missing file succeed on some destinations: ask first
    if ((await this.dest.stat(this.path)) === null) return false;
    try {
      await this.dest.remove(this.path);
    } catch (e) {
      if (isFurError(e, 'not-found')) return false;
      // removing is not allowed either: the refusal to open is what the user must see
      if (isFurError(e, 'permission-denied')) throw refused;
      throw e;
    }
    return this.create(data);
  }

  remove(): Promise<void> {
    return this.dest.remove(this.path);
  }

  /** write, make durable where the destination can, close */
  private async fill(f: RemoteFile, data: Uint8Array): Promise<void> {
    const written = f.write(0, data);
    written.catch(() => undefined); // the sync or close that follows reports it
    const sync = this.dest.capabilities.fsync && f.sync ? f.sync() : undefined;
    sync?.catch(() => undefined);
    try {
      // where requests keep their order (SFTP), write, fsync and close go out back to back: one round trip
      if (!this.dest.capabilities.ordered) await (sync ?? f.flush());
    } catch (e) {
      await f.close().catch(() => undefined);
      throw e;
    }
    await f.close();
    await sync;
    await written;
  }
}

/** rounds of claim, list, withdraw before a run gives way */
const CLAIM_ROUNDS = 6;

export class ClaimsRecord implements ExclusiveRecord {
  /** this run's claim, once it holds the record; the claim last read (the one a remove means) */
  private own?: string;
  private seen?: string;

  /**
   * `store` writes a claim whole, where the destination's own openWrite would do more than that
   * (S3's first write sweeps abandoned uploads, which a run that may be refused must not do)
   */
  constructor(private readonly dest: Destination, readonly path: string, private readonly store?: (path: string, data: Uint8Array) => Promise<void>) {}

  async create(data: Uint8Array): Promise<boolean> {
    const mine = posix.join(this.path, randomBytes(8).toString('hex'));
    await this.dest.mkdirp(this.path);
    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      await this.write(mine, data);
      const claims = await this.claims();
      if (claims.length === 1 && claims[0] === posix.basename(mine)) {
        this.own = mine;
        return true;
      }
      await this.dest.remove(mine);
      // several at once: each withdrew; the first back after a random pause takes it
      await sleep(100 + Math.random() * 500);
      if ((await this.claims()).length > 0) return false;
    }
    return false;
  }

  async read(): Promise<Uint8Array | null> {
    const names = await this.claims();
    if (names.length === 0) return null;
    // the oldest standing claim is the holder's (a newer one belongs to a run about to withdraw)
    const dated = await Promise.all(names.map(async (n) => ({ n, at: (await this.dest.stat(posix.join(this.path, n)))?.mtimeMs ?? Infinity })));
    dated.sort((a, b) => a.at - b.at || (a.n < b.n ? -1 : 1));
    this.seen = posix.join(this.path, dated[0]!.n);
    // gone: withdrawn as it was listed
    return (await readRecord(this.dest, this.seen)) ?? new Uint8Array(0);
  }

  async replace(data: Uint8Array): Promise<boolean> {
    const claim = this.own ?? this.seen;
    if (claim === undefined || (await this.dest.stat(claim)) === null) return false;
    await this.write(claim, data);
    return true;
  }

  async remove(): Promise<void> {
    const claim = this.own ?? this.seen;
    if (claim !== undefined) await this.dest.remove(claim);
    this.own = undefined;
    // the folder goes once empty (on S3 there is none)
    if ((await this.claims()).length === 0) await this.dest.remove(this.path).catch(() => undefined);
  }

  private async write(claim: string, data: Uint8Array): Promise<void> {
    if (this.store) return this.store(claim, data);
    const f = await this.dest.openWrite(claim, { truncate: true });
    try {
      await f.write(0, data);
    } catch (e) {
      await f.close().catch(() => undefined);
      throw e;
    }
    await f.close();
  }

  private async claims(): Promise<string[]> {
    try {
      return await this.dest.list(this.path);
    } catch (e) {
      if (isFurError(e, 'not-found') || (await this.dest.stat(this.path)) === null) return [];
      throw e;
    }
  }
}
