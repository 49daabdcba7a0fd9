/**
 * A static HTTP server on loopback that honours Range requests and counts what it serves, so
 * tests can measure how many requests and bytes a reader needed.
 */
import { createServer, type Server } from 'node:http';
import { open, stat } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface RangeServer {
  url(name: string): string;
  stats: { requests: number; bytes: number };
  reset(): void;
  close(): Promise<void>;
}

export async function startRangeServer(dir: string): Promise<RangeServer> {
  const stats = { requests: 0, bytes: 0 };
  const server: Server = createServer(async (req, res) => {
    try {
      const rel = normalize(decodeURIComponent((req.url ?? '/').split('?')[0])).replace(/^(\.\.[/\\])+/, '');
      const path = join(dir, rel);
      const st = await stat(path);
      stats.requests++;
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      let start = 0;
      let end = st.size - 1;
      if (m) {
        start = Number(m[1]);
        end = m[2] ? Math.min(Number(m[2]), st.size - 1) : st.size - 1;
        if (start >= st.size) { res.writeHead(416, { 'Content-Range': `bytes */${st.size}` }); res.end(); return; }
      }
      const length = end - start + 1;
      const headers: Record<string, string | number> = { 'Content-Length': length, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
      if (m) headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
      res.writeHead(m ? 206 : 200, headers);
      if (req.method === 'HEAD') { res.end(); return; }
      const fh = await open(path);
      try {
        const buf = Buffer.alloc(length);
        await fh.read(buf, 0, length, start);
        stats.bytes += length;
        res.end(buf);
      } finally { await fh.close(); }
    } catch {
      res.writeHead(404); res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    stats,
    reset() { stats.requests = 0; stats.bytes = 0; },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
