/**
 * One writer per destination. Two runs appending to one file, or writing batches into one folder,
 * overwrite each other's frames while each believes its commits durable and deletes its sources.
 * So a run holds a lease on what it writes before it writes anything: a small record beside the
 * file (`.<name>.fur-lease`) or in the folder (`.fur-lease`), made by the destination's exclusive
 * create (Destination.exclusive), naming its holder: host, process id, run id, start time.
 *
 * - A run that finds the lease held refuses at once, naming the holder, having written nothing.
 * - The holder renews the record every TTL/3 (default TTL 30 s). A record is stale when its
 *   holder is provably gone — same machine (boot and process namespace), process dead or its id
 *   reused — and then taken over at once; or when it is expired: unchanged for a whole TTL, as
 *   watched by the run that wants it (its own clock, so the holder's clock does not matter: a
 *   record whose time looks old is watched, not believed). `--take-over` takes it regardless.
 * - Taking over is serialized: the taker first creates a token named after the stale record's
 *   content (exclusive create again), so of two runs restarted together after a crash only one
 *   replaces it; the other finds the token, or the new lease.
 * - Self-fencing: a renewal that succeeded, started at t, vouches for the lease until
 *   t + TTL − TTL/6 (another run can take an expired lease only after watching it unchanged for
 *   a TTL from after that write). `check` fails past that, or once a renewal finds the record
 *   gone or someone else's: the run then starts no commit and deletes no source.
 *
 * What it rests on: no request is delayed in flight by more than TTL/6 (5 s by default) — a
 * renewal that lands later than that could overwrite the record of a run that took an expired
 * lease meanwhile. Storage offers no fencing token to close that gap; a stalled link is far more
 * likely to fail than to deliver such a request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FurError, isFurError } from '../errors.js';
import type { Destination, ExclusiveRecord } from '../transport/destination.js';
import type { Method } from './options.js';

export const DEFAULT_LEASE_TTL_MS = 30_000;
export const LEASE_SUFFIX = '.fur-lease';
/** the record is padded to this size, so an overwrite in place replaces all of it */
const RECORD_BYTES = 1024;
/** how often a record that may be stale is read again while it is watched */
const WATCH_POLL_MS = 1000;
/** rounds of create / judge / take over before giving up on a lease others keep taking */
const ATTEMPTS = 8;

/** The lease record of a method's target: beside the file (append), or in the folder. */
export function leasePath(method: Method, destPath: string): string {
  if (method !== 'append') return posix.join(destPath, LEASE_SUFFIX);
  return posix.join(posix.dirname(destPath), `.${posix.basename(destPath)}${LEASE_SUFFIX}`);
}

/** Whether a name in a destination folder is a lease's (a record, or a takeover token). */
export function isLeaseName(name: string): boolean {
  return /\.fur-lease(\.takeover-[0-9a-f]+)?$/.test(name);
}

/**
 * What a run keeps across its reconnections: its id (so it takes back its own lease) and until
 * when its lease was vouched for. `takeOver` applies to the first lease only.
 */
export interface LeaseTicket {
  runId: string;
  ttlMs: number;
  takeOver: boolean;
  heldUntil?: number;
}

export function leaseTicket(o: { ttlMs?: number; takeOver?: boolean } = {}): LeaseTicket {
  return { runId: randomBytes(8).toString('hex'), ttlMs: o.ttlMs ?? DEFAULT_LEASE_TTL_MS, takeOver: o.takeOver ?? false };
}

interface Holder {
  fur: 'lease';
  host: string;
  /** boot id and process namespace: where a process id means the same process */
  machine: string;
  pid: number;
  /** the process's start time (clock ticks after boot), so a reused process id is not taken for it */
  process?: string;
  run: string;
  started: string;
  renewed: string;
  seq: number;
  ttlSec: number;
}

const now = () => performance.now();

export class Lease {
  private readonly record: ExclusiveRecord;
  private readonly ttl: number;
  private readonly started = new Date().toISOString();
  private seq = 0;
  private validUntil = -Infinity;
  /** set when a renewal found the record gone (null) or someone else's */
  private lost?: Holder | null;
  private lastError?: unknown;
  private timer?: NodeJS.Timeout;
  private renewing?: Promise<void>;
  private released = false;
  private fence!: (e: FurError) => void;
  /** settles with the reason once this run may no longer commit (lost or expired) */
  readonly fenced: Promise<FurError> = new Promise((resolve) => { this.fence = resolve; });

  private constructor(
    private readonly dest: Destination,
    readonly path: string,
    /** the destination as the user named it, for messages */
    private readonly where: string,
    private readonly ticket: LeaseTicket,
    private readonly notice: (message: string) => void,
    private readonly signal?: AbortSignal,
  ) {
    this.record = dest.exclusive(path);
    this.ttl = ticket.ttlMs;
  }

  /**
   * Take the lease at `path` (see leasePath), or fail: `lease-held` when another run holds it. A
   * failure to create it at all (permission, a missing share) is reported as the destination
   * being unwritable, since this is the first thing a run writes.
   */
  static async acquire(dest: Destination, path: string, o: { where: string; ticket: LeaseTicket; notice: (message: string) => void; signal?: AbortSignal }): Promise<Lease> {
    const lease = new Lease(dest, path, o.where, o.ticket, o.notice, o.signal);
    try {
      const dir = posix.dirname(path);
      if (dir !== '.') await dest.mkdirp(dir);
      await lease.take();
    } catch (e) {
      if (!isFurError(e) || e.tag.startsWith('lease-')) throw e;
      throw new FurError(e.tag, `cannot write to ${o.where}: ${e.message}`, e.fields, { cause: e });
    }
    lease.ticket.takeOver = false;
    lease.schedule(lease.ttl / 3);
    return lease;
  }

  /** Throws unless this run still holds the lease: call before a commit, and before deleting sources. */
  check(): void {
    if (this.lost !== undefined) throw this.lostError();
    if (now() > this.validUntil) throw this.expiredError();
  }

  /** Stop renewing and remove the record, if it is still this run's (best effort). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.timer);
    await this.renewing;
    // past its time, the record may already be another run's
    if (this.lost !== undefined || now() > this.validUntil) return;
    try {
      if (this.parse(await this.record.read())?.run === this.ticket.runId) await this.record.remove();
    } catch {
      // left behind: the next run on this machine sees its process gone; others, that it expired
    }
  }

  private async take(): Promise<void> {
    let forced = this.ticket.takeOver;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const started = now();
      if (await this.record.create(this.encode())) return this.held(started);
      const content = await this.settled();
      if (content === null) continue; // released meanwhile
      const holder = this.parse(content);
      if (forced) {
        forced = false;
        this.notice(`${this.where}: taking over the lease${holder ? ` of ${describe(holder)}` : ''} (--take-over)`);
        await this.record.remove();
        continue;
      }
      if (holder?.run === this.ticket.runId && now() < (this.ticket.heldUntil ?? -Infinity)) {
        // this run's own, from before a reconnection, still vouched for: carry on with it
        this.seq = holder.seq;
        if (await this.renew()) return;
        continue;
      }
      let why: string | undefined = holder && this.gone(holder);
      if (why === undefined) {
        if (holder && this.looksLive(holder)) throw this.heldError(holder);
        const unchanged = await this.watch(content, holder);
        if (!unchanged) continue;
        why = holder ? `not renewed for ${Math.round(((holder.ttlSec * 1000) || this.ttl) / 1000)} s` : 'left unfinished';
      }
      if (await this.takeOver(content, holder, why)) return;
    }
    throw new FurError('lease-busy', `${this.where}: other fur runs kept taking the lease while this one tried ${ATTEMPTS} times; run one fur per destination`, { path: this.path });
  }

  /**
   * The record, read again for a moment while it does not parse: one just created is empty until
   * its holder's write lands (a few round trips at most).
   */
  private async settled(): Promise<Uint8Array | null> {
    let content = await this.record.read();
    for (let i = 0; i < 10 && content !== null && this.parse(content) === undefined; i++) {
      await sleep(100);
      content = await this.record.read();
    }
    return content;
  }

  /**
   * Why the holder is provably gone (this run's own expired record; a dead process on this
   * machine), or undefined when it may be alive.
   */
  private gone(h: Holder): string | undefined {
    if (h.run === this.ticket.runId) return 'this run, before it lost its connection';
    const me = machine();
    if (h.host !== hostname() || h.machine !== me) return undefined;
    try {
      process.kill(h.pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return 'that process has ended';
      return undefined; // EPERM: alive, another user's
    }
    const start = processStart(h.pid);
    if (h.process !== undefined && start !== undefined && start !== h.process) return 'that process has ended';
    return undefined;
  }

  /** a record renewed within its time to live by the holder's clock: taken as live at once */
  private looksLive(h: Holder): boolean {
    const age = Date.now() - Date.parse(h.renewed);
    if (h.host === hostname() && h.machine === machine()) return true; // its process is alive
    return !(age >= (h.ttlSec * 1000 || this.ttl));
  }

  /**
   * Watch a record that may be stale for one time to live: true when it stayed unchanged; false
   * when it changed into something to judge again. A holder seen renewing it is refused.
   */
  private async watch(content: Uint8Array, holder: Holder | undefined): Promise<boolean> {
    const ttl = holder ? holder.ttlSec * 1000 || this.ttl : this.ttl;
    this.notice(`${this.where}: the lease is held by ${holder ? `${describe(holder)}, last renewed ${ago(holder.renewed)}` : 'a run that has not finished writing it'}; watching it for ${Math.round(ttl / 1000)} s to see whether that run is gone`);
    return this.unchangedFor(() => this.record.read(), content, ttl, holder ? ` of ${describe(holder)}` : '', (again) => {
      const h = this.parse(again);
      if (h && holder && h.run === holder.run) throw this.heldError(h);
    });
  }

  /** Whether a takeover token stays as it is for one time to live (its taker is gone). */
  private tokenUnchanged(read: () => Promise<Uint8Array | null>, content: Uint8Array, taker: Holder | undefined): Promise<boolean> {
    const ttl = taker ? taker.ttlSec * 1000 || this.ttl : this.ttl;
    this.notice(`${this.where}: ${taker ? describe(taker) : 'a fur run'} began taking over the lease and has not finished; watching for ${Math.round(ttl / 1000)} s whether that run is gone`);
    return this.unchangedFor(() => read().catch(() => null), content, ttl, '');
  }

  /**
   * Read something every second for `ttl`: true when it stayed `content`; false once it is gone
   * or changed (`changed` sees the new content first, and may refuse by throwing).
   */
  private async unchangedFor(read: () => Promise<Uint8Array | null>, content: Uint8Array, ttl: number, whose: string, changed?: (again: Uint8Array) => void): Promise<boolean> {
    const until = now() + ttl;
    while (now() < until) {
      await sleep(Math.min(WATCH_POLL_MS, ttl / 3), undefined, { signal: this.signal }).catch(() => {
        throw new FurError('lease-held', `${this.where}: stopped while waiting for the lease${whose}; nothing was written`, { path: this.path });
      });
      const again = await read();
      if (again === null) return false;
      if (same(again, content)) continue;
      changed?.(again);
      return false;
    }
    return true;
  }

  /** Replace a stale record, holding the takeover token for it meanwhile. False: judge again. */
  private async takeOver(stale: Uint8Array, holder: Holder | undefined, why: string): Promise<boolean> {
    const token = this.dest.exclusive(`${this.path}.takeover-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`);
    if (!(await token.create(this.encode()))) {
      const content = await token.read().catch(() => null);
      if (content === null) return false; // that takeover ended meanwhile: judge again
      const other = this.parse(content);
      // a run killed while taking over leaves its token behind, which would refuse every later
      // run: a taker provably gone is cleared at once; one that may be alive (elsewhere, or its
      // token never written) holds a token for a few round trips, so one that stays unchanged
      // for a time to live is left over and cleared
      if (other && this.gone(other)) {
        await token.remove().catch(() => undefined);
        return false;
      }
      if (!other || !this.looksLive(other)) {
        if (await this.tokenUnchanged(() => token.read(), content, other)) {
          await token.remove().catch(() => undefined);
        }
        return false;
      }
      throw new FurError('lease-held',
        `${this.where}: another fur run (${describe(other)}) is taking over the lease${holder ? ` of ${describe(holder)}` : ''}; nothing was written — if no other fur is running, run again with --take-over`,
        { path: this.path });
    }
    try {
      const current = await this.record.read();
      if (current === null || !same(current, stale)) return false;
      await this.record.remove();
      const started = now();
      if (!(await this.record.create(this.encode()))) return false;
      this.notice(`${this.where}: took over the lease${holder ? ` of ${describe(holder)}` : ''} (${why})`);
      this.held(started);
      return true;
    } finally {
      await token.remove().catch(() => undefined);
    }
  }

  private held(started: number): void {
    this.validUntil = started + this.ttl - this.ttl / 6;
    this.ticket.heldUntil = this.validUntil;
  }

  /** One renewal: the record must still be this run's; true when renewed. */
  private async renew(): Promise<boolean> {
    const started = now();
    const h = this.parse(await this.record.read());
    if (h?.run !== this.ticket.runId) {
      this.lose(h ?? null);
      return false;
    }
    this.seq = Math.max(this.seq, h.seq) + 1;
    if (!(await this.record.replace(this.encode()))) {
      this.lose(null);
      return false;
    }
    this.held(started);
    this.lastError = undefined;
    return true;
  }

  private schedule(ms: number): void {
    if (this.released) return;
    this.timer = setTimeout(() => {
      this.renewing = (async () => {
        if (this.released || this.lost !== undefined) return;
        if (now() > this.validUntil) {
          // no longer vouched for: writing the record now could overwrite a run that took it
          const e = this.expiredError();
          this.notice(e.message);
          this.fence(e);
          return;
        }
        try {
          if (!(await this.renew())) return;
          this.schedule(this.ttl / 3);
        } catch (e) {
          this.lastError = e;
          this.schedule(Math.max(this.ttl / 12, Math.min(this.ttl / 6, this.validUntil - now())));
        }
      })();
    }, ms);
    this.timer.unref();
  }

  private lose(to: Holder | null): void {
    this.lost = to;
    const e = this.lostError();
    this.notice(e.message);
    this.fence(e);
  }

  private heldError(h: Holder): FurError {
    return new FurError('lease-held',
      `${this.where} is in use by another fur run (${describe(h)}, renewed ${ago(h.renewed)}); two runs writing one destination overwrite each other's frames, so nothing was written — wait for that run to end or stop it, or if it is gone run again with --take-over`,
      { path: this.path, host: h.host, pid: h.pid, run: h.run });
  }

  private lostError(): FurError {
    const by = this.lost ? `another fur run (${describe(this.lost)})` : 'someone who removed it';
    return new FurError('lease-lost',
      `${this.where}: this run's lease was taken over by ${by}; stopped before the next commit — committed frames stay, local files not yet deleted are kept`,
      { path: this.path });
  }

  private expiredError(): FurError {
    const cause = this.lastError instanceof Error ? ` (${this.lastError.message})` : '';
    return new FurError('lease-expired',
      `${this.where}: could not renew this run's lease within ${Math.round(this.ttl / 1000)} s${cause}; stopped before the next commit — local files not yet deleted are kept`,
      { path: this.path });
  }

  private encode(): Uint8Array {
    const h: Holder = {
      fur: 'lease', host: hostname(), machine: machine(), pid: process.pid, process: processStart(process.pid),
      run: this.ticket.runId, started: this.started, renewed: new Date().toISOString(), seq: this.seq, ttlSec: this.ttl / 1000,
    };
    const json = `${JSON.stringify(h)}\n`;
    // padded, so that rewriting it in place (SFTP, a local file) leaves nothing of a longer one behind
    return Buffer.from(json.padEnd(Math.ceil(json.length / RECORD_BYTES) * RECORD_BYTES, ' '));
  }

  private parse(content: Uint8Array | null): Holder | undefined {
    if (content === null || content.length === 0) return undefined;
    try {
      const h = JSON.parse(Buffer.from(content).toString('utf8')) as Partial<Holder>;
      if (h?.fur !== 'lease' || typeof h.run !== 'string' || typeof h.pid !== 'number' || typeof h.host !== 'string') return undefined;
      return { ...h, seq: Number(h.seq) || 0, ttlSec: Number(h.ttlSec) || 0, machine: String(h.machine ?? ''), renewed: String(h.renewed ?? ''), started: String(h.started ?? '') } as Holder;
    } catch {
      return undefined; // being written, or not fur's
    }
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

function describe(h: Holder): string {
  const started = Number.isNaN(Date.parse(h.started)) ? h.started : `${h.started.slice(0, 19).replace('T', ' ')} UTC`;
  return `host ${h.host}, pid ${h.pid}, started ${started}`;
}

function ago(iso: string): string {
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (Number.isNaN(s)) return 'at an unknown time';
  if (s < 0) return `${-s} s from now by this machine's clock`;
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

let machineId: string | undefined;
/** Boot id and process namespace (Linux): within them a process id names one process. */
function machine(): string {
  if (machineId === undefined) {
    const parts: string[] = [];
    try { parts.push(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()); } catch { /* not Linux */ }
    try { parts.push(readlinkSync('/proc/self/ns/pid')); } catch { /* not Linux */ }
    machineId = parts.join(' ');
  }
  return machineId;
}

/** A process's start time in clock ticks after boot (Linux), undefined where unknown. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name (which may hold spaces and parentheses): state is field 3, start time field 22
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
