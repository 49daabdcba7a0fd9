/**
 * Where a live view listens: `--serve [HOST:]PORT`. Loopback unless a host is given; any other
 * address needs the token printed in the page's URL.
 */
import { FurError } from '../errors.js';

export interface ServeAddress {
  host: string;
  port: number;
  /** only this machine can connect: no token needed */
  loopback: boolean;
}

/** the addresses that reach only this machine, as fur binds them */
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function parseServe(text: string): ServeAddress {
  const t = text.trim();
  const m = /^(\d+)$/.exec(t) ?? /^\[([^\]]+)\]:(\d+)$/.exec(t) ?? /^([^:[\]\s]+):(\d+)$/.exec(t);
  const port = m ? Number(m[m.length - 1]) : NaN;
  if (!m || !(port <= 65535)) {
    throw new FurError('bad-option', `--serve '${text}': give a port (8080) or a host and port (0.0.0.0:8080, [::]:8080)`, { setting: '--serve', value: text });
  }
  const host = m.length === 3 ? m[1]! : '127.0.0.1';
  return { host, port, loopback: LOOPBACK.has(host.toLowerCase()) };
}
