/**
 * An in-process FTPS server for the npm test tier: ftp-srv over a local folder, with TLS from a
 * certificate made in the test (explicit AUTH TLS, or implicit TLS), plus the faults fur must
 * survive — commands the server lacks, uploads cut mid-stream, connections dropped.
 */
import ftpSrv from 'ftp-srv';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { createSecureContext, TLSSocket } from 'node:tls';
import { makeCertificate, type Certificate } from '../../harness/certificate.js';

export interface FtpsServerOptions {
  root: string;
  user?: string;
  password?: string;
  /** the server's certificate (default: self-signed for localhost and 127.0.0.1) */
  certificate?: Certificate;
  /** TLS from the first byte instead of AUTH TLS */
  implicit?: boolean;
  /** no TLS at all (to test that fur refuses it) */
  plain?: boolean;
  /** commands the server answers with 502, e.g. ['RNFR', 'RNTO'] or ['APPE'] */
  without?: string[];
  /** never answer a RETR whose data connection the client closed (ftp-srv's own way) */
  silentAfterCut?: boolean;
}

export interface FtpsServer {
  readonly port: number;
  readonly certificate: Certificate;
  readonly user: string;
  url(path: string): string;
  /** Cut the next `times` uploads that reach `bytes` bytes, at that byte (the connection dies). */
  cutUploads(bytes: number, times?: number): void;
  /** Destroy every open connection (control and data). */
  dropConnections(): void;
  /** Most STOR/APPE transfers running at once so far, control connections open at once, logins accepted. */
  readonly stats: { maxTransfers: number; maxConnections: number; stores: number; appends: number; cuts: number; logins: number };
  close(): Promise<void>;
}

// ftp-srv 4.6's passive connector waits for the data connection by polling every 50 ms, and goes
// on polling after its 5 s timeout when the client never connects (a killed client, a refused
// transfer): the timers keep the test process alive forever. Same wait, but it stops.
{
  const req = createRequire(createRequire(import.meta.url).resolve('ftp-srv'));
  const Bluebird = req('bluebird') as { delay(ms: number): Promise<void>; reject(e: unknown): unknown; resolve(v: unknown): unknown; TimeoutError: new (m: string) => Error };
  const Passive = req('./src/connector/passive') as { prototype: Record<string, unknown> };
  const { ConnectorError } = req('./src/errors') as { ConnectorError: new (m: string) => Error };
  Passive.prototype.waitForConnection = function (this: { dataServer?: { listening: boolean }; dataSocket?: { connected?: boolean } }, { timeout = 5000, delay = 50 } = {}) {
    if (!this.dataServer) return Bluebird.reject(new ConnectorError('Passive server not setup'));
    const deadline = Date.now() + timeout;
    const check = (): unknown => {
      if (this.dataServer && this.dataServer.listening && this.dataSocket && this.dataSocket.connected) return Bluebird.resolve(this.dataSocket);
      if (Date.now() >= deadline || !this.dataServer) return Bluebird.reject(new Bluebird.TimeoutError('operation timed out'));
      return Bluebird.delay(delay).then(check);
    };
    return check();
  };
}

/**
 * ftp-srv answers AUTH TLS with 234 and wraps the socket in TLS only once that reply's write has
 * completed; a client quick to start its handshake (fur, on a busy machine) has its ClientHello
 * read as an FTP command and answered in clear text, and the handshake fails. Here the socket
 * is wrapped at once, before the 234 goes out on the plain socket underneath: the client sends
 * nothing until it has read the 234, so everything after it is TLS.
 */
interface FtpConnection {
  server: { options: { tls?: object } };
  secure: boolean;
  commandSocket: Socket;
  reply: (o: number | { code: number; socket?: Socket }, ...m: unknown[]) => Promise<unknown>;
}
const authTls = createRequire(createRequire(import.meta.url).resolve('ftp-srv'))('./src/commands/registration/auth') as {
  handler: (this: FtpConnection, a: { command: { arg: string } }) => unknown;
};
authTls.handler = function (this: FtpConnection, { command }) {
  if (command.arg.trim().toUpperCase() !== 'TLS') return this.reply(504);
  if (!this.server.options.tls) return this.reply(502);
  if (this.secure) return this.reply(202);
  const plain = this.commandSocket;
  const secure = new TLSSocket(plain, { isServer: true, secureContext: createSecureContext(this.server.options.tls) });
  // ftp-srv listens on its command socket: the TLS socket's events are that socket's now
  for (const event of ['data', 'timeout', 'end', 'close', 'drain', 'error']) secure.on(event, (...a: unknown[]) => plain.emit(event, ...a));
  this.commandSocket = secure as unknown as Socket;
  this.secure = true;
  return this.reply({ code: 234, socket: plain });
};

/**
 * ftp-srv 4.6 never answers a RETR whose data connection the client closed before the end (it
 * waits for a write that never completes, with the command connection paused): vsftpd, ProFTPD,
 * pure-ftpd and pyftpdlib answer (426, or 226 if all was sent). Here the close is made an error
 * of that data connection, which ftp-srv's RETR answers (551) before going on. `silentAfterCut`
 * keeps ftp-srv's own way, for the client's fallback.
 */
const SILENT = Symbol('silent after a cut transfer');
{
  type Reply = (o: number | { code: number }, ...m: unknown[]) => Promise<unknown>;
  const retr = createRequire(createRequire(import.meta.url).resolve('ftp-srv'))('./src/commands/registration/retr') as {
    handler: (this: { server: object; reply: Reply; connector: { waitForConnection(): Promise<Socket> } }, a: unknown) => Promise<unknown>;
  };
  const own = retr.handler;
  retr.handler = function (this, a) {
    const silent = (this.server as { [SILENT]?: boolean })[SILENT];
    const reply = this.reply;
    // ftp-srv answers a cut transfer now and then (551 when its write fails): never, here
    if (silent) this.reply = (o, ...m) => ((typeof o === 'number' ? o : o.code) >= 400 ? Promise.resolve() : reply.call(this, o, ...m));
    const answered = own.call(this, a);
    let settled = false;
    void Promise.resolve(answered).finally(() => { settled = true; this.reply = reply; });
    if (!silent) {
      this.connector.waitForConnection().then((socket) => {
        socket.once('close', () => { if (!settled) socket.emit('error', new Error('the client closed the data connection')); });
      }, () => undefined);
    }
    return answered;
  };
}

// ftp-srv logs through bunyan to stdout unless given a logger; the test runner owns stdout
const quiet = { child: () => quiet, trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {} };

export async function startFtpsServer(o: FtpsServerOptions): Promise<FtpsServer> {
  mkdirSync(o.root, { recursive: true });
  const certificate = o.certificate ?? makeCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const user = o.user ?? 'lab';
  const password = o.password ?? 'secret';
  const stats = { maxTransfers: 0, maxConnections: 0, stores: 0, appends: 0, cuts: 0, logins: 0 };
  let transfers = 0;
  let cut: { bytes: number; times: number } | undefined;
  const before = new Map(['SIGTERM', 'SIGINT', 'SIGQUIT'].map((s) => [s, process.listeners(s as NodeJS.Signals)]));
  const server = new ftpSrv.FtpSrv({
    url: `${o.implicit ? 'ftps' : 'ftp'}://127.0.0.1:0`,
    pasv_url: '127.0.0.1',
    pasv_min: 20000,
    pasv_max: 40000,
    tls: o.plain ? false : { cert: certificate.cert, key: certificate.key },
    anonymous: false,
    blacklist: o.without ?? [],
    log: quiet as never,
    greeting: 'fur test server',
  });
  if (o.silentAfterCut) (server as unknown as { [SILENT]: boolean })[SILENT] = true;
  // ftp-srv exits the process on SIGINT/SIGTERM; tests send those to child processes only
  for (const [s, had] of before) for (const l of process.listeners(s as NodeJS.Signals)) if (!had.includes(l)) process.removeListener(s, l);

  class CuttingFs extends ftpSrv.FileSystem {
    override write(fileName: string, opts: { append?: boolean; start?: unknown } = {}): ReturnType<InstanceType<typeof ftpSrv.FileSystem>['write']> {
      const out = super.write(fileName, opts) as { stream: Writable; clientPath: string };
      if (opts.append) stats.appends++;
      else stats.stores++;
      transfers++;
      stats.maxTransfers = Math.max(stats.maxTransfers, transfers);
      let done = false;
      const finish = () => { if (!done) { done = true; transfers--; } };
      out.stream.once('close', finish);
      out.stream.once('finish', finish);
      out.stream.once('error', finish);
      if (!cut || cut.times <= 0) return out as never;
      const plan = cut;
      const limit = plan.bytes;
      const connection = this.connection as unknown as { commandSocket: Socket; connector: { socket?: Socket } };
      let seen = 0;
      let tripped = false;
      const gate = new Transform({
        transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
          if (tripped) return cb();
          const room = limit - seen;
          seen += chunk.length;
          if (seen < limit || plan.times <= 0) return cb(null, chunk);
          tripped = true;
          plan.times--;
          stats.cuts++;
          this.push(chunk.subarray(0, room));
          cb();
          // what arrived so far reaches the file, then the connection dies like a cut link
          setImmediate(() => {
            gate.end();
            connection.connector.socket?.destroy();
            connection.commandSocket.destroy();
          });
        },
      });
      gate.pipe(out.stream);
      // ftp-srv waits for 'finish' on the stream it was given, and ends it on the socket's 'end'
      return { stream: gate as unknown as Writable, clientPath: out.clientPath } as never;
    }
  }

  server.on('login', ({ connection, username, password: pw }: { connection: unknown; username: string; password: string }, resolve: (r: object) => void, reject: (e: Error) => void) => {
    if (username !== user || pw !== password) return reject(new Error('Login incorrect'));
    stats.logins++;
    resolve({ fs: new CuttingFs(connection as never, { root: o.root, cwd: '/' }) });
  });
  let open = 0;
  (server as unknown as NodeJS.EventEmitter).on('connect', () => { open++; stats.maxConnections = Math.max(stats.maxConnections, open); });
  server.on('disconnect', () => { open--; });
  server.on('client-error', () => {});
  // every socket of the control server, so close() can end them: ftp-srv's own close waits for
  // connections that a killed client left half-open, which can be forever
  const raw = (server as unknown as { server: import('node:net').Server }).server;
  const sockets = new Set<Socket>();
  raw.on(o.implicit ? 'secureConnection' : 'connection', (sock: Socket) => { sockets.add(sock); sock.on('close', () => sockets.delete(sock)); });
  await server.listen();
  const port = (raw.address() as { port: number }).port;
  const dropConnections = () => {
    const conns = (server as unknown as { connections: Record<string, { commandSocket: Socket; connector?: { socket?: Socket } }> }).connections;
    for (const c of Object.values(conns)) { c.connector?.socket?.destroy(); c.commandSocket.destroy(); }
  };
  return {
    port,
    certificate,
    user,
    stats,
    url: (path: string) => `ftps://${user}@127.0.0.1:${port}${path.startsWith('/') ? '' : '/'}${path}`,
    cutUploads(bytes: number, times = 1) { cut = { bytes, times }; },
    dropConnections,
    async close() {
      for (const sock of sockets) sock.destroy();
      dropConnections();
      await Promise.race([server.close().then(() => undefined, () => undefined), new Promise<void>((r) => setTimeout(r, 2000).unref())]);
      raw.close();
    },
  };
}
