/**
 * The live view's HTTP server: the page and its files, /status (JSON), /events (Server-Sent
 * Events: the figures once a second and at every commit or error, only while someone listens)
 * and /frame.png (the latest committed frame, small). Read-only: GET and HEAD, nothing else.
 * Bound to loopback unless a host is given; bound elsewhere, every request must carry the
 * random token of the printed URL.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FurError } from '../errors.js';
import type { ServeAddress } from './address.js';
import { assets } from './assets.js';
import { redactedJson, redactor } from './redact.js';
import type { LiveState } from './state.js';
import type { Thumbnails } from './thumbnails.js';

const TICK_MS = 1000;
/**
 * changes (commits, errors) reach pages at once, but not more often than this: a fast upload
 * commits many times a second, and every update costs the browser a repaint (on the instrument's
 * own machine, CPU the capture would use)
 */
const CHANGE_MS = 1000;

const HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  // the token is in the page's URL: never send it on to another site
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

interface Listener { res: ServerResponse; chartVersion: number; points: number }

export class LiveServer {
  private readonly server: Server;
  private readonly listeners = new Set<Listener>();
  private timer?: NodeJS.Timeout;
  private changeTimer?: NodeJS.Timeout;
  private lastPush = 0;
  private readonly redact: (text: string) => string;
  /** required in every request's query when bound beyond loopback */
  readonly token?: string;
  url = '';
  /** status updates pushed to pages (the benchmark and tests read it) */
  pushes = 0;

  constructor(private readonly address: ServeAddress, private readonly state: LiveState, private readonly thumbs: Thumbnails, secrets: readonly string[]) {
    this.redact = redactor(secrets);
    if (!address.loopback) this.token = randomBytes(18).toString('base64url');
    this.server = createServer((req, res) => { this.handle(req, res).catch(() => { if (!res.headersSent) res.writeHead(500); res.end(); }); });
    state.onChange = () => this.changed();
  }

  async listen(): Promise<string> {
    assets(); // a missing page file is found now, not by the first visitor
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (e: NodeJS.ErrnoException) => reject(new FurError('serve-failed',
        `--serve ${this.address.host}:${this.address.port}: cannot listen there (${e.code ?? e.message}); choose another port`, { setting: '--serve' })));
      this.server.listen(this.address.port, this.address.host, resolve);
    });
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    this.url = `http://${host}:${a.port}/${this.token ? `?token=${this.token}` : ''}`;
    return this.url;
  }

  private allowed(req: IncomingMessage, url: URL): boolean {
    if (this.token) {
      const given = Buffer.from(url.searchParams.get('token') ?? '');
      const want = Buffer.from(this.token);
      return given.length === want.length && timingSafeEqual(given, want);
    }
    // loopback: only names of this machine, so a web site cannot reach the page by rebinding its own name
    const port = (this.server.address() as AddressInfo).port;
    return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes((req.headers.host ?? '').toLowerCase());
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fur');
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.send(res, 405, 'text/plain', 'read-only: GET only\n', { Allow: 'GET, HEAD' });
    if (!this.allowed(req, url)) return this.send(res, 403, 'text/plain', this.token ? 'the address printed by fur (with its token) is needed\n' : 'forbidden host\n');
    const q = this.token ? `?token=${this.token}` : '';
    switch (url.pathname) {
      case '/': {
        const page = assets().get('index.html')!;
        return this.send(res, 200, page.type, page.body.toString('utf8').replaceAll('{{q}}', q));
      }
      case '/status':
        return this.send(res, 200, 'application/json', redactedJson(this.state.status(), this.redact));
      case '/events':
        return this.subscribe(res);
      case '/frame.png': {
        const page = url.searchParams.get('page');
        const pic = await this.thumbs.picture(page === null || page === '' ? undefined : Math.max(0, Math.floor(Number(page)) || 0));
        if (typeof pic === 'string') return this.send(res, 404, 'text/plain', pic + '\n');
        const f = pic.frame;
        // what the picture shows, told with it: the page captions the picture it has, not a later status
        return this.send(res, 200, 'image/png', pic.png, {
          'X-Fur-Frame': String(pic.seq), 'X-Fur-Page': String(pic.page), 'X-Fur-Row': String(f.firstRow + pic.page),
          'X-Fur-Name': encodeURIComponent(this.redact(f.name)),
          'X-Fur-Written': new Date(f.writtenAt).toISOString(), 'X-Fur-Committed': new Date(f.committedAt).toISOString(),
        });
      }
      default: {
        const a = url.pathname.startsWith('/assets/') ? assets().get(url.pathname.slice('/assets/'.length)) : undefined;
        if (a && url.pathname !== '/assets/index.html') return this.send(res, 200, a.type, a.body);
        return this.send(res, 404, 'text/plain', 'not found\n');
      }
    }
  }

  private send(res: ServerResponse, code: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
    res.writeHead(code, { ...HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  private subscribe(res: ServerResponse): void {
    res.writeHead(200, { ...HEADERS, 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
    const l: Listener = { res, chartVersion: -1, points: 0 };
    this.listeners.add(l);
    res.on('close', () => {
      this.listeners.delete(l);
      if (this.listeners.size === 0) this.idle();
    });
    res.write('retry: 2000\n\n');
    this.push([l]);
    // figures once a second, only while someone listens
    this.timer ??= setInterval(() => this.push(), TICK_MS);
  }

  private idle(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    clearTimeout(this.changeTimer);
    this.changeTimer = undefined;
  }

  private changed(): void {
    if (this.listeners.size === 0 || this.changeTimer) return;
    this.changeTimer = setTimeout(() => { this.changeTimer = undefined; this.push(); }, Math.max(0, this.lastPush + CHANGE_MS - Date.now()));
  }

  /** the status to every listener (or those given), with the chart points each has not had */
  private push(to: Iterable<Listener> = this.listeners): void {
    if (this.listeners.size === 0) return;
    this.lastPush = Date.now();
    this.pushes++;
    const status = `event: status\ndata: ${redactedJson(this.state.status(false), this.redact)}\n\n`;
    const chart = this.state.chart;
    for (const l of to) {
      if (l.chartVersion !== chart.version) {
        l.res.write(`event: chart\ndata: ${JSON.stringify(chart)}\n\n`);
        l.chartVersion = chart.version;
      } else if (chart.t.length > l.points) {
        const from = l.points;
        const part = { t: chart.t.slice(from), upload: chart.upload.slice(from), instrument: chart.instrument.slice(from), uploadFps: chart.uploadFps.slice(from), instrumentFps: chart.instrumentFps.slice(from) };
        l.res.write(`event: points\ndata: ${JSON.stringify(part)}\n\n`);
      }
      l.points = chart.t.length;
      l.res.write(status);
    }
  }

  /** The run is over: pages get the final figures and are told so, then the server closes. */
  async close(): Promise<void> {
    this.push();
    for (const l of this.listeners) l.res.end('event: end\ndata: {}\n\n');
    this.idle();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
