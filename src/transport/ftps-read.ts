/**
 * A byte range of a remote file over FTP: REST offset + RETR, cut short once enough has arrived.
 *
 * FTP has no "stop here". Closing the whole control connection ends a transfer for sure, but the
 * next read then pays a new connection and login: pure-ftpd's default login (argon2id) costs
 * 1.6–2.6 s, and `fur verify` reads many ranges. So only the data connection is closed, and the
 * control connection is kept once the server has answered for the transfer: a reply still on its
 * way would otherwise be taken for the answer to the next command. Most servers answer 426
 * ("transfer aborted"), or 226 when they had sent everything already. pure-ftpd 1.0.50 answers
 * with a line coded 150 (its transfer-rate line) and nothing after it; a reply below 200 is
 * therefore followed by a NOOP, and the connection is in step again once the NOOP's 200 arrives
 * (anything before it, a late 426 included, belonged to the transfer). A server that says nothing
 * for CUT_REPLY_MS (ftp-srv 4.6 waits forever) loses the control connection after all, and is
 * remembered (CutHabit): its later cut transfers close their control connection at once, as before.
 */
import { FTPError, type Client, type FTPResponse } from 'basic-ftp';

export const CUT_REPLY_MS = 2000;

/** What a destination learns about its server's answer to a cut transfer (shared by its connections). */
export interface CutHabit { silent?: boolean }

export async function retrieveRange(c: Client, path: string, offset: number, length: number, habit: CutHabit = {}): Promise<Uint8Array> {
  await c.prepareTransfer(c.ftp);
  const ftp = c.ftp;
  const parts: Buffer[] = [];
  let got = 0;
  /** before the server's 1xx; the data flows; cut short, waiting for the transfer's reply; a NOOP sent to get in step */
  let state: 'asked' | 'flowing' | 'cut' | 'noop' = 'asked';
  let dataDone = false;
  let final: FTPResponse | undefined;
  let cutTimer: NodeJS.Timeout | undefined;
  const bytes = () => {
    const all = Buffer.concat(parts);
    return new Uint8Array(all.buffer, all.byteOffset, Math.min(all.length, length));
  };
  try {
    return await ftp.handle(offset > 0 ? `REST ${offset}` : `RETR ${path}`, (res, task) => {
      if (res instanceof Error && !(res instanceof FTPError)) {
        // the connection failed (or was closed after a cut the server did not answer)
        if (state === 'cut' || state === 'noop') task.resolve(bytes());
        else task.reject(res);
        return;
      }
      const code = res.code;
      if (state === 'cut') {
        if (code >= 200) { task.resolve(bytes()); return; }
        state = 'noop';
        ftp.send('NOOP');
        return;
      }
      if (state === 'noop') {
        // the NOOP's answer (500/502: a server without NOOP still answered it)
        if (code === 200 || code >= 500) task.resolve(bytes());
        return;
      }
      if (code === 350 && state === 'asked') {
        ftp.send(`RETR ${path}`);
        return;
      }
      if ((code === 125 || code === 150) && state === 'asked') {
        const data = ftp.dataSocket;
        if (!data) {
          task.reject(new Error('the server began the transfer but there is no data connection'));
          return;
        }
        state = 'flowing';
        // the data connection watches the transfer; the control connection waits meanwhile
        ftp.socket.setTimeout(0);
        data.setTimeout(ftp.timeout);
        data.on('data', (chunk: Buffer) => {
          if (state !== 'flowing') return;
          parts.push(chunk);
          got += chunk.length;
          if (got < length) return;
          // drop the data connection (its listeners go with it) and wait for the server's answer
          ftp.dataSocket = undefined;
          ftp.socket.setTimeout(ftp.timeout);
          if (final) { task.resolve(bytes()); return; }
          state = 'cut';
          if (habit.silent) { c.close(); return; }
          cutTimer = setTimeout(() => { habit.silent = true; c.close(); }, CUT_REPLY_MS).unref();
        });
        data.once('end', () => {
          dataDone = true;
          ftp.socket.setTimeout(ftp.timeout);
          if (final && state === 'flowing') task.resolve(bytes());
        });
        return;
      }
      if (code < 200) return;
      // the transfer's reply, before anything was cut
      final = res as FTPResponse;
      if (res instanceof FTPError) task.reject(res);
      else if (dataDone) task.resolve(bytes());
      // 226 before the last bytes: the data connection's end (or the cut) resolves
    });
  } finally {
    clearTimeout(cutTimer);
    if (ftp.dataSocket) ftp.dataSocket = undefined;
  }
}
