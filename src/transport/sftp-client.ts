/**
 * fur's own SFTP v3 client (draft-ietf-secsh-filexfer-02) over a byte stream: the pipes of an
 * OpenSSH `ssh -s … sftp` process. Only what fur uses: OPEN/CLOSE/READ/WRITE, STAT/LSTAT/FSTAT,
 * FSETSTAT, OPENDIR/READDIR, REMOVE, MKDIR/RMDIR, REALPATH, RENAME, and OpenSSH's extensions
 * posix-rename@, fsync@ and limits@openssh.com.
 *
 * Requests are pipelined: each is sent at once with its own id, replies may come in any order.
 * A WRITE's data is handed to the stream as a view of the caller's bytes (its 25-odd header
 * bytes go separately), so the only copy is the kernel's into the pipe.
 */
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { Done, RemoteAttrs, RequestLimits, SftpChannel } from './sftp-channel.js';

// packet types (§3)
const INIT = 1, VERSION = 2, OPEN = 3, CLOSE = 4, READ = 5, WRITE = 6, LSTAT = 7, FSTAT = 8, FSETSTAT = 10,
  OPENDIR = 11, READDIR = 12, REMOVE = 13, MKDIR = 14, RMDIR = 15, REALPATH = 16, STAT = 17, RENAME = 18,
  STATUS = 101, HANDLE = 102, DATA = 103, NAME = 104, ATTRS = 105, EXTENDED = 200, EXTENDED_REPLY = 201;
// attribute flags (§5)
const ATTR_SIZE = 0x1, ATTR_UIDGID = 0x2, ATTR_PERMISSIONS = 0x4, ATTR_ACMODTIME = 0x8, ATTR_EXTENDED = 0x80000000;
const FX_OK = 0, FX_EOF = 1;
const STATUS_NAMES = ['OK', 'EOF', 'no such file', 'permission denied', 'failure', 'bad message', 'no connection', 'connection lost', 'operation unsupported'];

/** a reply longer than this is not SFTP from a sane server (OpenSSH's own bound is 256 KiB) */
const MAX_REPLY = 4 * 1024 * 1024;
/** what a server must accept (§3: 34000 bytes a packet), less a WRITE's header */
const BASE_LIMIT = 32 * 1024;
/** this client sends any size; the server's limits are what bind */
const NO_CAP: RequestLimits = { maxWrite: Number.MAX_SAFE_INTEGER, maxRead: Number.MAX_SAFE_INTEGER };

type Reply = { type: number; body: Buffer };
type Handler = (r: Reply) => void;

/** An error carrying the server's SFTP status as `code`, as ssh2's do. */
function statusError(code: number, message: string): Error {
  return Object.assign(new Error(message || STATUS_NAMES[code] || `status ${code}`), { code });
}

class Reader {
  at = 0;
  constructor(readonly b: Buffer) {}
  u32(): number { const v = this.b.readUInt32BE(this.at); this.at += 4; return v; }
  u64(): number { const v = Number(this.b.readBigUInt64BE(this.at)); this.at += 8; return v; }
  bytes(): Buffer { const n = this.u32(); const v = this.b.subarray(this.at, this.at + n); if (v.length !== n) throw new RangeError('short string'); this.at += n; return v; }
  string(): string { return this.bytes().toString('utf8'); }
  get left(): number { return this.b.length - this.at; }
}

/** Builds one request: length, type, id, then fields. */
class Packet {
  private readonly parts: Buffer[] = [];
  private size = 0;
  constructor(type: number, id: number) {
    const head = Buffer.allocUnsafe(9);
    head[4] = type;
    head.writeUInt32BE(id, 5);
    this.push(head);
  }
  private push(b: Buffer): this { this.parts.push(b); this.size += b.length; return this; }
  u32(v: number): this { const b = Buffer.allocUnsafe(4); b.writeUInt32BE(v >>> 0); return this.push(b); }
  u64(v: number): this { const b = Buffer.allocUnsafe(8); b.writeBigUInt64BE(BigInt(v)); return this.push(b); }
  bytes(v: Buffer): this { return this.u32(v.length).push(v); }
  string(v: string): this { return this.bytes(Buffer.from(v, 'utf8')); }
  attrs(a: { size?: number; mode?: number }): this {
    const flags = (a.size !== undefined ? ATTR_SIZE : 0) | (a.mode !== undefined ? ATTR_PERMISSIONS : 0);
    this.u32(flags);
    if (a.size !== undefined) this.u64(a.size);
    if (a.mode !== undefined) this.u32(a.mode);
    return this;
  }
  /** one buffer with the length filled in */
  done(): Buffer {
    const b = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    b.writeUInt32BE(this.size - 4, 0);
    return b;
  }
}

function readAttrs(r: Reader): RemoteAttrs {
  const flags = r.u32();
  const a: RemoteAttrs = { size: 0, mode: 0, mtime: 0 };
  if (flags & ATTR_SIZE) a.size = r.u64();
  if (flags & ATTR_UIDGID) { r.u32(); r.u32(); }
  if (flags & ATTR_PERMISSIONS) a.mode = r.u32();
  if (flags & ATTR_ACMODTIME) { r.u32(); a.mtime = r.u32(); }
  if (flags & ATTR_EXTENDED) for (let n = r.u32(); n > 0; n--) { r.bytes(); r.bytes(); }
  return a;
}

export interface SftpClientOptions {
  /** what the SSH channel carries per round trip (the server's window; not visible through a pipe) */
  window: number;
}

export class SftpClient extends EventEmitter implements SftpChannel {
  extensions: Readonly<Record<string, string>> = {};
  limits?: RequestLimits;
  readonly cap = NO_CAP;
  readonly window: number;
  private nextId = 0;
  private readonly pending = new Map<number, Handler>();
  /** bytes received and not yet parsed */
  private readonly inbox: Buffer[] = [];
  private inboxBytes = 0;
  private gone?: Error;

  constructor(private readonly out: Writable, input: Readable, o: SftpClientOptions) {
    super();
    this.window = o.window;
    // The stream's end and errors are its owner's to report (fail): the owner knows why (an
    // ssh process says so on its stderr, and exits after its stdout has ended).
    input.on('data', (chunk: Buffer) => this.receive(chunk));
  }

  /**
   * INIT and VERSION, then limits@openssh.com when the server offers it. Resolves once the
   * channel can take requests of the right size.
   */
  async start(): Promise<void> {
    const version = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(-1, (r) => (r.type === VERSION ? resolve(r) : reject(new Error(`the server answered INIT with packet type ${r.type}`))));
      const init = Buffer.allocUnsafe(9);
      init.writeUInt32BE(5, 0);
      init[4] = INIT;
      init.writeUInt32BE(3, 5);
      this.send(init);
    });
    const r = new Reader(version.body);
    r.u32(); // the server's version: OpenSSH answers 3, and what fur sends is v3 either way
    const ext: Record<string, string> = {};
    while (r.left > 0) { const name = r.string(); ext[name] = r.string(); }
    this.extensions = ext;
    if (ext['limits@openssh.com'] === '1') {
      const reply = await this.ask(new Packet(EXTENDED, this.id()).string('limits@openssh.com'), EXTENDED_REPLY);
      const l = new Reader(reply);
      l.u64(); // largest packet: the data limits below already leave room for the headers
      const maxRead = l.u64(), maxWrite = l.u64();
      this.limits = { maxWrite: maxWrite || BASE_LIMIT, maxRead: maxRead || BASE_LIMIT };
    }
  }

  open(path: string, flags: number, attrs: { mode?: number }, cb: Done<Buffer>): void {
    this.request(new Packet(OPEN, this.id()).string(path).u32(flags).attrs(attrs), HANDLE, (b) => copy(new Reader(b).bytes()), cb);
  }
  close(handle: Buffer, cb: Done): void { this.status(new Packet(CLOSE, this.id()).bytes(handle), cb); }

  write(handle: Buffer, buf: Buffer, start: number, len: number, position: number, cb: Done): void {
    const id = this.id();
    // the header alone; the data follows as a view of the caller's bytes
    const head = Buffer.allocUnsafe(4 + 1 + 4 + 4 + handle.length + 8 + 4);
    let p = head.writeUInt32BE(head.length - 4 + len, 0);
    head[p++] = WRITE;
    p = head.writeUInt32BE(id, p);
    p = head.writeUInt32BE(handle.length, p);
    p += handle.copy(head, p);
    p = head.writeBigUInt64BE(BigInt(position), p);
    head.writeUInt32BE(len, p);
    if (this.refuse(cb)) return;
    this.pending.set(id, this.statusHandler(cb));
    this.out.write(head);
    this.out.write(buf.subarray(start, start + len));
  }

  read(handle: Buffer, buf: Buffer, start: number, len: number, position: number, cb: Done<number>): void {
    const p = new Packet(READ, this.id()).bytes(handle).u64(position).u32(len);
    this.request(p, DATA, (b) => {
      const data = new Reader(b).bytes();
      const n = Math.min(data.length, len);
      data.copy(buf, start, 0, n);
      return n;
    }, (err, n) => (err && (err as { code?: number }).code === FX_EOF ? cb(null, 0) : cb(err, n)));
  }

  fstat(handle: Buffer, cb: Done<RemoteAttrs>): void { this.request(new Packet(FSTAT, this.id()).bytes(handle), ATTRS, (b) => readAttrs(new Reader(b)), cb); }
  fsetstat(handle: Buffer, attrs: { size: number }, cb: Done): void { this.status(new Packet(FSETSTAT, this.id()).bytes(handle).attrs(attrs), cb); }
  stat(path: string, cb: Done<RemoteAttrs>): void { this.request(new Packet(STAT, this.id()).string(path), ATTRS, (b) => readAttrs(new Reader(b)), cb); }
  lstat(path: string, cb: Done<RemoteAttrs>): void { this.request(new Packet(LSTAT, this.id()).string(path), ATTRS, (b) => readAttrs(new Reader(b)), cb); }
  mkdir(path: string, attrs: { mode: number }, cb: Done): void { this.status(new Packet(MKDIR, this.id()).string(path).attrs(attrs), cb); }
  rmdir(path: string, cb: Done): void { this.status(new Packet(RMDIR, this.id()).string(path), cb); }
  unlink(path: string, cb: Done): void { this.status(new Packet(REMOVE, this.id()).string(path), cb); }
  rename(from: string, to: string, cb: Done): void { this.status(new Packet(RENAME, this.id()).string(from).string(to), cb); }
  ext_openssh_rename(from: string, to: string, cb: Done): void {
    this.status(new Packet(EXTENDED, this.id()).string('posix-rename@openssh.com').string(from).string(to), cb);
  }
  ext_openssh_fsync(handle: Buffer, cb: Done): void {
    this.status(new Packet(EXTENDED, this.id()).string('fsync@openssh.com').bytes(handle), cb);
  }
  realpath(path: string, cb: Done<string>): void {
    this.request(new Packet(REALPATH, this.id()).string(path), NAME, (b) => names(new Reader(b))[0] ?? '', cb);
  }

  readdir(path: string, cb: Done<Array<{ filename: string }>>): void {
    const entries: Array<{ filename: string }> = [];
    this.request(new Packet(OPENDIR, this.id()).string(path), HANDLE, (b) => copy(new Reader(b).bytes()), (err, handle) => {
      if (err) return cb(err);
      // READDIR until EOF, then CLOSE; the first failure is the one reported
      const next = (): void => this.request(new Packet(READDIR, this.id()).bytes(handle!), NAME, (b) => names(new Reader(b)), (e, batch) => {
        if (e && (e as { code?: number }).code !== FX_EOF) return this.close(handle!, () => cb(e));
        if (e) return this.close(handle!, (ce) => cb(ce, ce ? undefined : entries));
        for (const filename of batch!) entries.push({ filename });
        next();
      });
      next();
    });
  }

  /** Requests still waiting are answered with this error (no status: the channel is gone). */
  abandon(): void {
    const err = this.gone ?? new Error('the SFTP channel closed');
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const h of waiting) h({ type: -1, body: Buffer.from(err.message) });
  }

  end(): void {
    this.out.end();
  }

  private id(): number {
    this.nextId = (this.nextId + 1) >>> 0;
    return this.nextId;
  }

  private refuse(cb: Done<never>): boolean {
    if (this.gone === undefined) return false;
    const e = this.gone;
    process.nextTick(() => cb(new Error(e.message)));
    return true;
  }

  /** Send `p`; `parse` the reply of type `want`, or fail with the server's status. */
  private request<T>(p: Packet, want: number, parse: (body: Buffer) => T, cb: Done<T>): void {
    const packet = p.done();
    if (this.refuse(cb)) return;
    this.pending.set(packet.readUInt32BE(5), (r) => {
      if (r.type === -1) return cb(new Error(r.body.toString()));
      let value: T;
      try {
        if (r.type === STATUS) {
          const s = new Reader(r.body);
          const code = s.u32();
          return cb(statusError(code, s.left >= 4 ? s.string() : ''));
        }
        if (r.type !== want) return cb(new Error(`unexpected SFTP reply type ${r.type} (expected ${want})`));
        value = parse(r.body);
      } catch (e) {
        return cb(new Error(`malformed SFTP reply: ${(e as Error).message}`));
      }
      cb(null, value);
    });
    this.send(packet);
  }

  /** A request answered by a STATUS: OK is success. */
  private status(p: Packet, cb: Done): void {
    const packet = p.done();
    if (this.refuse(cb)) return;
    this.pending.set(packet.readUInt32BE(5), this.statusHandler(cb));
    this.send(packet);
  }

  private statusHandler(cb: Done): Handler {
    return (r) => {
      if (r.type === -1) return cb(new Error(r.body.toString()));
      if (r.type !== STATUS) return cb(new Error(`unexpected SFTP reply type ${r.type} (expected a status)`));
      const s = new Reader(r.body);
      const code = s.u32();
      if (code === FX_OK) return cb(null);
      cb(statusError(code, s.left >= 4 ? s.string() : ''));
    };
  }

  private ask(p: Packet, want: number): Promise<Buffer> {
    return new Promise((resolve, reject) => this.request(p, want, (b) => copy(b), (e, v) => (e ? reject(e) : resolve(v!))));
  }

  private send(b: Buffer): void {
    this.out.write(b);
  }

  private receive(chunk: Buffer): void {
    if (this.gone) return;
    this.inbox.push(chunk);
    this.inboxBytes += chunk.length;
    while (this.inboxBytes >= 4) {
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len < 1 || len > MAX_REPLY) return this.fail(new Error(`the server sent a malformed SFTP packet (length ${len})`));
      if (this.inboxBytes < 4 + len) return;
      const packet = this.take(4 + len);
      const type = packet[4]!;
      if (type === VERSION) {
        this.reply(-1, { type, body: packet.subarray(5) });
        continue;
      }
      if (len < 5) return this.fail(new Error('the server sent a malformed SFTP packet (no request id)'));
      this.reply(packet.readUInt32BE(5), { type, body: packet.subarray(9) });
    }
  }

  private reply(id: number, r: Reply): void {
    const h = this.pending.get(id);
    if (!h) return this.fail(new Error(`the server answered request ${id}, which was not asked`));
    this.pending.delete(id);
    h(r);
  }

  /** the first `n` bytes of the inbox, without consuming them */
  private peek(n: number): Buffer {
    const first = this.inbox[0]!;
    if (first.length >= n) return first;
    let k = 1;
    for (let have = first.length; have < n; k++) have += this.inbox[k]!.length;
    const joined = Buffer.concat(this.inbox.slice(0, k));
    this.inbox.splice(0, k, joined);
    return joined;
  }

  /** consume the first `n` bytes of the inbox (a view when they lie in one chunk) */
  private take(n: number): Buffer {
    const first = this.inbox[0]!;
    this.inboxBytes -= n;
    if (first.length > n) {
      this.inbox[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.inbox.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.inbox[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.inbox.shift();
      else this.inbox[0] = c.subarray(k);
    }
    return out;
  }

  /**
   * The channel is gone, for `cause`: reported as an 'error' (so the cause is the one kept),
   * then every request still waiting is answered, and later ones fail at once.
   */
  fail(cause: Error): void {
    if (this.gone) return;
    this.gone = cause;
    if (this.listenerCount('error') > 0) this.emit('error', cause);
    this.abandon();
    this.emit('close');
  }
}

function names(r: Reader): string[] {
  const out: string[] = [];
  for (let n = r.u32(); n > 0; n--) {
    out.push(r.string());
    r.bytes(); // the long name (ls -l style), for people
    readAttrs(r);
  }
  return out;
}

/** a handle must outlive the chunk it arrived in (which may be a view of a larger one) */
function copy(b: Buffer): Buffer {
  return Buffer.from(b);
}
