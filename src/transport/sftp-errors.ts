import { FurError } from '../errors.js';
import type { SftpSession } from './sftp-channel.js';

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02 §7). */
export const Status = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

/** What was being done, for the message: `write`, `open for writing`, `rename to /x`… */
export interface OpContext {
  op: string;
  path: string;
}

export function statusOf(e: unknown): number | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Turn an ssh2 SFTP failure into a FurError naming the remote path and what to do. Errors
 * without an SFTP status mean the channel went away; if the connection already recorded why,
 * that first cause is reported instead of ssh2's generic "No response from server".
 */
export function sftpError(s: SftpSession, e: unknown, ctx: OpContext): FurError {
  if (e instanceof FurError) return e;
  const where = `${ctx.path} on ${s.display}`;
  const fields = { url: s.display, path: ctx.path, op: ctx.op, status: statusOf(e) };
  const said = (e as Error)?.message ?? String(e);
  switch (statusOf(e)) {
    case Status.NO_SUCH_FILE:
      return new FurError('not-found', `${ctx.op} ${where}: no such file or directory`, fields, { cause: e });
    case Status.PERMISSION_DENIED:
      return new FurError('permission-denied',
        `${ctx.op} ${where}: permission denied; check that the login user may do this there (owner, mode, or the server's chroot)`,
        fields, { cause: e });
    case Status.FAILURE:
      // OpenSSH's sftp-server reports ENOSPC and EDQUOT as a bare "Failure".
      if (ctx.op === 'write' || ctx.op === 'fsync' || ctx.op === 'close') {
        return new FurError('remote-write-failed',
          `${ctx.op} ${where} failed (server says "${said}"); the remote disk is probably full or over quota — free space there or raise the quota`,
          fields, { cause: e });
      }
      return new FurError('remote-failed', `${ctx.op} ${where} failed (server says "${said}")`, fields, { cause: e });
    case Status.OP_UNSUPPORTED:
      return new FurError('unsupported-operation', `${ctx.op} ${where}: the server does not support this operation`, fields, { cause: e });
    case Status.NO_CONNECTION: case Status.CONNECTION_LOST: case undefined:
      return s.broken ?? new FurError('connection-lost',
        `${ctx.op} ${where}: connection lost (${said}); check the network and the server, then run again to resume`,
        fields, { cause: e });
    default:
      return new FurError('remote-failed', `${ctx.op} ${where} failed (server says "${said}")`, fields, { cause: e });
  }
}

type Callback<T> = (err: Error | null | undefined, value?: T) => void;

/**
 * Run one ssh2 SFTP call as a promise with fur's errors. A call on a broken connection fails at
 * once with the connection's first error.
 */
export function call<T>(s: SftpSession, ctx: OpContext, start: (cb: Callback<T>) => void): Promise<T> {
  if (s.broken) return Promise.reject(s.broken);
  return new Promise<T>((resolve, reject) => {
    const failed = (err: unknown): void => {
      // Without a status the channel died; give the connection's 'close'/'error' events a turn
      // to record the real cause first.
      if (statusOf(err) === undefined) setImmediate(() => reject(sftpError(s, err, ctx)));
      else reject(sftpError(s, err, ctx));
    };
    try {
      start((err, value) => (err ? failed(err) : resolve(value as T)));
    } catch (e) {
      failed(e);
    }
  });
}
