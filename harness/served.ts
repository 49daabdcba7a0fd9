/**
 * fur run as a user runs it (the real binary) with --serve: the page's URL as fur printed it,
 * the output so far, and the exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const FUR = join(process.cwd(), 'bin', 'fur.js');

export interface ServedRun {
  child: ChildProcess;
  /** the URL fur printed (with its token, if any) */
  url: string;
  output(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startServed(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<ServedRun> {
  const child = spawn(process.execPath, [FUR, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString('utf8'); });
  child.stderr!.on('data', (b: Buffer) => { out += b.toString('utf8'); });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const look = () => {
      const m = /live view at (http:\/\/\S+)/.exec(out) ?? /"type":"serve","url":"([^"]+)"/.exec(out);
      if (m) { child.stdout!.off('data', look); child.stderr!.off('data', look); resolve(m[1]!); }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    void exit.then(({ code }) => reject(new Error(`fur exited (${code}) before printing the live view's address:\n${out}`)));
  });
  return { child, url, output: () => out, exit };
}

/** `path` on the served page's origin, with its token (if the printed URL had one) */
export function servedUrl(base: string, path: string, params: Record<string, string> = {}): string {
  const u = new URL(base);
  const out = new URL(path, u.origin);
  const token = u.searchParams.get('token');
  if (token) out.searchParams.set('token', token);
  for (const [k, v] of Object.entries(params)) out.searchParams.set(k, v);
  return out.href;
}
