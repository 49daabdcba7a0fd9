import type { SFTPWrapper } from 'ssh2';

/**
 * ssh2's server answers the client's INIT with a fixed VERSION packet that lists no extensions,
 * so clients never use posix-rename@openssh.com or fsync@openssh.com against it even though
 * the server can serve EXTENDED requests. To test fur's use of them in-process, the VERSION
 * packet is swapped for one that lists them, as it leaves the channel.
 *
 * This reaches into ssh2 internals (`_protocol`, `outgoing`); when they are not as expected,
 * nothing is changed and the server simply runs without extensions. Returns whether it took.
 */
export function advertiseExtensions(sftp: SFTPWrapper, extensions: Record<string, string>): boolean {
  const internal = sftp as unknown as {
    _protocol?: { channelData?: (id: number, data: Buffer) => void };
    outgoing?: { window?: number };
  };
  const proto = internal._protocol;
  const outgoing = internal.outgoing;
  if (!proto || typeof proto.channelData !== 'function' || typeof outgoing?.window !== 'number') return false;

  const version = versionPacket(extensions);
  const real = proto;
  internal._protocol = new Proxy(real, {
    get(target, prop) {
      if (prop === 'channelData') {
        return (id: number, data: Buffer) => {
          // The plain VERSION packet: length 5, type 2 (SSH_FXP_VERSION), version 3.
          if (data.length === 9 && data[4] === 2) {
            internal._protocol = real;
            // ssh2 charged the channel window for 9 bytes; charge the difference too.
            outgoing.window! -= version.length - data.length;
            return real.channelData!(id, version);
          }
          return real.channelData!(id, data);
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return true;
}

function versionPacket(extensions: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const str = (s: string): void => {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, b);
  };
  for (const [name, ver] of Object.entries(extensions)) {
    str(name);
    str(ver);
  }
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(9);
  head.writeUInt32BE(5 + body.length, 0);
  head[4] = 2;
  head.writeUInt32BE(3, 5);
  return Buffer.concat([head, body]);
}
