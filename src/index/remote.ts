/** Range-readable bytes of a remote file, whatever the URL: HTTP(S), or any fur destination (SFTP, file). */
import type { Destination } from '../transport/destination.js';
import { httpBytes, type RemoteBytes } from './get.js';

export function destinationBytes(dest: Destination, path: string): RemoteBytes {
  let opened: ReturnType<Destination['openRead']> | undefined;
  const file = () => (opened ??= dest.openRead(path));
  return {
    fetch: async (offset, length) => (await file()).read(offset, length),
    async first(length) {
      const f = await file();
      const size = await f.size();
      return { size, data: await f.read(0, Math.min(length, size)) };
    },
    async close() { if (opened) await (await opened).close(); },
  };
}

export function isHttp(url: string): boolean { return /^https?:\/\//i.test(url); }
export { httpBytes };
