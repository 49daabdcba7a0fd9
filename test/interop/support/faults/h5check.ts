/** The node side of h5check.py: one persistent h5py process, requests answered in order. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { h5env, PYTHON } from '../h5py.js';

/** the source folder of this module (tsc does not copy the .py beside the compiled file) */
const HERE: string = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'h5check.py'))) return here;
  let dir = here;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'test', 'interop', 'support', 'faults');
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find test/interop/support/faults above ${here}`);
    dir = up;
  }
})();

export const H5CHECK_PY = join(HERE, 'h5check.py');

export type H5FileReport =
  | { path: string; ok: true; rows: number; dtype: string; shape: number[]; names: string[]; pages: number[]; hashes: string[]; badSha: number[] }
  | { path: string; ok: false; error: string };

export class H5Checker {
  private proc: ChildProcess;
  private buffer = '';
  private waiting = new Map<number, (files: H5FileReport[]) => void>();
  private nextId = 1;
  private stderr = '';
  private exited: string | undefined;
  /** files opened so far */
  opened = 0;

  constructor() {
    this.proc = spawn(PYTHON, [H5CHECK_PY], { env: h5env(), stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.buffer += s;
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 1);
        const msg = JSON.parse(line) as { id: number; files: H5FileReport[] };
        this.waiting.get(msg.id)?.(msg.files);
        this.waiting.delete(msg.id);
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr = (this.stderr + s).slice(-4000); });
    this.proc.on('exit', (code, signal) => {
      this.exited = `h5check.py exited (${code ?? signal}): ${this.stderr}`;
      for (const w of this.waiting.values()) w([]);
      this.waiting.clear();
    });
    this.proc.stdin!.on('error', () => {});
  }

  /** Opens each file with h5py and describes it (see h5check.py). */
  read(files: string[], dataset = '/data'): Promise<H5FileReport[]> {
    if (!files.length) return Promise.resolve([]);
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = this.nextId++;
    return new Promise((res, rej) => {
      this.waiting.set(id, (out) => {
        if (this.exited && !out.length) rej(new Error(this.exited));
        else { this.opened += out.length; res(out); }
      });
      this.proc.stdin!.write(JSON.stringify({ id, files, dataset }) + '\n');
    });
  }

  close(): void {
    this.proc.stdin!.end();
    setTimeout(() => { if (!this.exited) this.proc.kill('SIGKILL'); }, 2000).unref();
  }
}
