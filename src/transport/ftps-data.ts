/**
 * FTPS data connections, opened the way Python's ftplib and curl open them: the TCP connection is
 * made after EPSV (PASV where EPSV is refused), and its TLS handshake starts only once the
 * transfer command has gone out and the server has answered it (150/125).
 *
 * basic-ftp starts the handshake as soon as TCP connects, before the command. pyftpdlib takes a
 * data connection that has something to read before it knows the transfer (the ClientHello) for
 * a closed one and drops it: the client sees ECONNRESET instead of the reply, and basic-ftp
 * closes the whole control connection. Whether the command or the ClientHello is read first
 * is a race, so transfers to pyftpdlib failed at random, listings most (measured: nearly every
 * LIST and RETR on loopback).
 *
 * Some servers do the opposite and send 150 only after the handshake (ftp-srv): a handshake that
 * waited for the reply would wait forever. So the handshake also starts HANDSHAKE_AFTER_MS after
 * the command went out without a reply, and a server seen to answer only after the handshake is
 * remembered (DataTlsOrder, one per destination): later transfers start it right after the command.
 */
import { FTPError, type Client, type FTPContext, type FTPResponse, type ResponseHandler } from 'basic-ftp';
import { EventEmitter } from 'node:events';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/** How long a transfer command may go unanswered before its data connection's handshake starts anyway. */
export const HANDSHAKE_AFTER_MS = 200;

/** What a destination learns about its server's data connections (shared by its control connections). */
export interface DataTlsOrder {
  /** the server answered a transfer command only once the data connection's handshake was done */
  serverWaitsForHandshake?: boolean;
  /** EPSV was refused: ask for PASV */
  noEpsv?: boolean;
}

/** Commands that use the data connection prepared before them. */
const TRANSFER = /^(RETR|STOR|STOU|APPE|LIST|NLST|MLSD)\b/i;

/** Make `client` open data connections as described above. */
export function deferDataTls(client: Client, order: DataTlsOrder): void {
  const ftp = client.ftp;
  let prepared: PendingData | undefined;
  client.prepareTransfer = async (ctx: FTPContext): Promise<FTPResponse> => {
    const { res, host, port } = await passive(ctx, order);
    const raw = await openTcp(host, port, ctx);
    if (!ctx.hasTLS) {
      ctx.dataSocket = raw;
      return res;
    }
    prepared = new PendingData(raw);
    ctx.dataSocket = prepared as unknown as Socket;
    return res;
  };
  const handle = ftp.handle.bind(ftp);
  ftp.handle = (command: string | undefined, handler: ResponseHandler) => {
    const pending = command && (TRANSFER.test(command) || /^REST /i.test(command)) ? prepared : undefined;
    if (!pending) return handle(command, handler);
    prepared = undefined;
    let timer: NodeJS.Timeout | undefined;
    const start = () => {
      clearTimeout(timer);
      if (pending.started || pending.dropped) return;
      const tls = pending.start({ ...ftp.tlsOptions, session: ftp.tlsSessionStore ?? (ftp.socket as TLSSocket).getSession() });
      // a TLS 1.3 server may hand out a ticket per connection, each good once
      tls.on('session', (s: Buffer) => { ftp.tlsSessionStore = s; });
      // the stand-in is let go; the TLS socket is the transfer's data connection from now on
      ftp.dataSocket = tls;
    };
    const arm = () => {
      if (order.serverWaitsForHandshake) start();
      else timer = setTimeout(start, HANDSHAKE_AFTER_MS).unref();
    };
    const task = handle(command, (res, t) => {
      if (!(res instanceof Error) && (res.code === 150 || res.code === 125)) {
        // the first preliminary reply tells the order (pure-ftpd sends another after a cut transfer)
        if (!pending.started && !pending.dropped) start();
        else if (pending.secured && !pending.replied) order.serverWaitsForHandshake = true;
        pending.replied = true;
      } else if (res instanceof Error || res.code >= 200) {
        clearTimeout(timer);
      }
      handler(res, t);
      // REST's handler has just sent the transfer command
      if (!(res instanceof Error) && res.code === 350) arm();
    });
    if (TRANSFER.test(command!)) arm();
    return task;
  };
}

/**
 * Stands in for the data connection until its TLS handshake starts. basic-ftp only sets its
 * timeout, listens to it and destroys it; destroying it before the handshake closes the TCP
 * connection, after it the TLS socket owns that.
 */
class PendingData extends EventEmitter {
  started = false;
  dropped = false;
  secured = false;
  /** the server's preliminary reply to the transfer came */
  replied = false;

  constructor(private readonly raw: Socket) {
    super();
    // a failure before the handshake shows as the handshake's (or as the server's reply)
    raw.on('error', () => {});
  }

  setTimeout(): this { return this; }

  destroy(): this {
    this.dropped = true;
    if (!this.started) this.raw.destroy();
    return this;
  }

  start(options: object): TLSSocket {
    this.started = true;
    const tls = tlsConnect({ ...options, socket: this.raw });
    tls.once('secureConnect', () => { this.secured = true; });
    return tls;
  }
}

async function passive(ftp: FTPContext, order: DataTlsOrder): Promise<{ res: FTPResponse; host: string; port: number }> {
  // the data connection goes to the host of the control connection, whatever PASV names: a
  // server behind NAT often names its private address, and fur connects nowhere it did not log in
  const host = ftp.socket.remoteAddress;
  if (host === undefined) throw new Error('the control connection is closed');
  if (!order.noEpsv) {
    try {
      const res = await ftp.request('EPSV');
      const port = /[|!]{3}(\d+)[|!]/.exec(res.message)?.[1];
      if (port === undefined) throw new Error(`cannot read the port in the reply to EPSV: ${res.message}`);
      return { res, host, port: Number(port) };
    } catch (e) {
      if (!(e instanceof FTPError)) throw e;
      order.noEpsv = true;
    }
  }
  const res = await ftp.request('PASV');
  const m = /(?<![-\d])\d+,\d+,\d+,\d+,(\d+),(\d+)/.exec(res.message);
  if (!m) throw new Error(`cannot read the address in the reply to PASV: ${res.message}`);
  return { res, host, port: (Number(m[1]) & 255) * 256 + (Number(m[2]) & 255) };
}

function openTcp(host: string, port: number, ftp: FTPContext): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host, port, family: ftp.ipFamily });
    s.setTimeout(ftp.timeout);
    s.once('timeout', () => { s.destroy(); reject(new Error(`Timeout when trying to open data connection to ${host}:${port}`)); });
    s.once('error', (e: Error) => { e.message = `Can't open data connection in passive mode: ${e.message}`; reject(e); });
    s.once('connect', () => {
      s.setTimeout(0);
      s.removeAllListeners('timeout');
      s.removeAllListeners('error');
      resolve(s);
    });
  });
}
