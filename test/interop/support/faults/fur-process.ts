/**
 * The real `fur` binary as a child process (`node bin/fur.js …`), so a fault can be a SIGKILL at
 * any instant, and a frozen process (SIGSTOP) can be inspected without a race.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface FurExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class FurProcess {
  readonly exited: Promise<FurExit>;
  private proc: ChildProcess;
  private done = false;
  private stopped = false;
  private out: string[] = [];
  private err: string[] = [];

  constructor(bin: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    this.proc = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (s: string) => this.out.push(s));
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => this.err.push(s));
    this.exited = new Promise((res) => {
      this.proc.once('error', (e) => { this.err.push(String(e)); });
      this.proc.once('close', (code, signal) => {
        this.done = true;
        res({ code, signal, stdout: this.out.join(''), stderr: this.err.join('') });
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return !this.done;
  }

  /** stdout so far (JSON events with --json) */
  get stdout(): string {
    return this.out.join('');
  }

  /** SIGKILL: no cleanup, no flush, as a crash or an OOM kill. */
  kill(): boolean {
    if (this.done) return false;
    if (this.stopped) this.proc.kill('SIGCONT');
    return this.proc.kill('SIGKILL');
  }

  /** Freeze the process (SIGSTOP): it deletes nothing and sends nothing new until `resume`. */
  freeze(): boolean {
    if (this.done || this.stopped) return false;
    this.stopped = this.proc.kill('SIGSTOP');
    return this.stopped;
  }

  resume(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (!this.done) this.proc.kill('SIGCONT');
  }
}
