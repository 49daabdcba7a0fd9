import type { SFTPWrapper } from 'ssh2';

/**
 * An SFTP WRITE request sent straight from the caller's bytes. ssh2's `write` first copies the
 * data into a new buffer holding the whole request, then copies it again into each SSH packet;
 * here the request's 30-odd header bytes go as one channel message and the data as views of the
 * caller's buffer, each copied only once, into its SSH packet (the channel is a byte stream:
 * where its messages split a request does not matter). For a gigabyte that is a gigabyte less
 * copied and allocated.
 *
 * This uses ssh2 internals (the channel's window and request table); when they are not as
 * expected, or the request does not fit the channel's window right now, or earlier requests are
 * still queued inside ssh2 (whose order must be kept), it returns false and the caller uses
 * ssh2's own `write`.
 */
interface Internals {
  outgoing?: { id?: unknown; window?: unknown; packetSize?: unknown; state?: unknown };
  _protocol?: { channelData?: unknown };
  _buffer?: unknown;
  _waitWindow?: unknown;
  _requests?: unknown;
  _writeReqid?: unknown;
}

const WRITE = 6;
const MAX_REQID = 2 ** 32 - 1;

export function writeDirect(sftp: SFTPWrapper, handle: Buffer, buf: Buffer, start: number, len: number, position: number, cb: (err?: Error) => void): boolean {
  const s = sftp as unknown as Internals;
  const out = s.outgoing;
  const proto = s._protocol;
  if (!out || !proto || typeof proto.channelData !== 'function' || !Array.isArray(s._buffer) || typeof s._requests !== 'object' || s._requests === null) return false;
  if (typeof out.id !== 'number' || typeof out.window !== 'number' || typeof out.packetSize !== 'number' || typeof s._writeReqid !== 'number') return false;
  const headerLen = 4 + 1 + 4 + 4 + handle.length + 8 + 4;
  if (out.state !== 'open' || s._buffer.length > 0 || s._waitWindow === true || out.window < headerLen + len || out.packetSize < headerLen) return false;

  const reqid = (s._writeReqid + 1) & MAX_REQID;
  s._writeReqid = reqid;
  const header = Buffer.allocUnsafe(headerLen);
  let p = 0;
  header.writeUInt32BE(headerLen - 4 + len, p); p += 4;
  header[p++] = WRITE;
  header.writeUInt32BE(reqid >>> 0, p); p += 4;
  header.writeUInt32BE(handle.length, p); p += 4;
  handle.copy(header, p); p += handle.length;
  header.writeBigUInt64BE(BigInt(position), p); p += 8;
  header.writeUInt32BE(len, p);
  (s._requests as Record<number, { cb: (err?: Error) => void }>)[reqid] = { cb };

  const channelData = proto.channelData as (id: number, data: Buffer) => void;
  const send = (chunk: Buffer): void => {
    (out as { window: number }).window -= chunk.length;
    channelData.call(proto, out.id as number, chunk);
  };
  send(header);
  const packet = out.packetSize;
  for (let at = start, end = start + len; at < end; at += packet) send(buf.subarray(at, Math.min(end, at + packet)));
  return true;
}
