/**
 * --log-file: every event of a run as one JSON object per line, with its time — each
 * reconnection, commit (and why then), kept file (and why) and deletion (and why) — appended,
 * written synchronously so a crash loses nothing already said.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { FurError } from '../errors.js';
import type { RunEvent } from '../pipeline/progress.js';

export interface EventLog {
  write(e: RunEvent | Record<string, unknown>): void;
  close(): void;
}

export function openLog(path: string, now: () => number = Date.now): EventLog {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'a');
  } catch (e) {
    throw new FurError('bad-option', `--log-file ${path}: cannot open for appending (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { setting: '--log-file', value: path });
  }
  return {
    write(e) {
      if (fd === undefined) return;
      writeSync(fd, JSON.stringify({ time: new Date(now()).toISOString(), ...e }) + '\n');
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
