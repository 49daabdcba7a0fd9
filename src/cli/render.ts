/**
 * Rendering run events: on a terminal, one live status line redrawn in place (fitted to the
 * terminal's width, redrawn when it changes) and replaced by the summary; elsewhere a timestamped
 * status line every --stats interval; or, with --json, one JSON object per line on stdout.
 * A message repeated for many files is shown once, and folded into one line with a count.
 */
import type { ProgressSnapshot, RunEvent } from '../pipeline/progress.js';
import type { EventLog } from './log.js';
import { mb, plural, rate, statusLine } from './status-line.js';

const SCAN_QUIET_MS = 2000;
const SCAN_EVERY_MS = 5000;

/**
 * Text that comes from file names or servers, safe to print: a control character is shown as an
 * escape (\n, \x1b) instead of acting on the terminal or starting a line of its own.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** kept files listed at the end of a run; --json lists every one */
const KEPT_LISTED = 50;

/** `path: why` (reader messages start with the file's path already) */
function keptLine(e: { file: string; message: string }): string {
  return printable(e.message.startsWith(`${e.file}: `) ? e.message : `${e.file}: ${e.message}`);
}

export interface RenderOptions {
  json: boolean;
  /** stderr is a terminal */
  tty: boolean;
  /** -q: -1 (no progress, start or summary lines), -v: 1 (every commit, skip and deletion too) */
  verbosity?: number;
  /** not on a terminal: a status line this often, ms (0: none; default 10 s) */
  statsMs?: number;
  /** --log-file */
  log?: EventLog;
  /** where text goes (default process.stderr) */
  stream?: NodeJS.WritableStream & { columns?: number };
  now?: () => number;
}

export interface Renderer {
  emit(e: RunEvent): void;
  /** Say what was folded, and let go of the terminal. */
  end(): void;
}

/**
 * `line` broken between words into lines of at most `width` columns, continuations indented; a
 * word longer than a line (a long path) is broken where the line ends, as the terminal would.
 */
export function wrap(line: string, width: number): string {
  if (line.length <= width) return line;
  const indent = /^ */.exec(line)![0].slice(0, width >> 2);
  const more = `${indent}  `;
  const out: string[] = [];
  let cur = indent;
  let empty = true;
  for (const word of line.trimStart().split(' ')) {
    const next = empty ? cur + word : `${cur} ${word}`;
    if (next.length <= width) { cur = next; empty = false; continue; }
    if (!empty) { out.push(cur); cur = more + word; } else cur = next;
    empty = false;
    while (cur.length > width) {
      out.push(cur.slice(0, width));
      cur = more + cur.slice(width);
    }
  }
  out.push(cur);
  return out.join('\n');
}

/** One live line at the bottom of a terminal: other lines print above it. */
class LiveLine {
  private text = '';
  constructor(private readonly out: NodeJS.WritableStream) {}
  show(text: string): void {
    this.text = text;
    this.out.write(`\r${text}\x1b[K`);
  }
  clear(): void {
    if (this.text) this.out.write('\r\x1b[K');
    this.text = '';
  }
  print(line: string): void {
    const again = this.text;
    this.clear();
    this.out.write(line + '\n');
    if (again) this.show(again);
  }
}

/** Messages of one kind after the first: counted, said once at the end. */
interface Fold { first: string; more: number; kept: boolean }

export function renderer(opts: RenderOptions): Renderer {
  const out = opts.stream ?? process.stderr;
  const verbosity = opts.verbosity ?? 0;
  const now = opts.now ?? Date.now;
  const statsMs = opts.statsMs ?? 10_000;
  const log = opts.log;
  let lastStatus = -Infinity;
  /** a status event is said (not on a terminal, and in the log) once per --stats interval */
  const due = (e: RunEvent): boolean => {
    if (e.type !== 'status') return true;
    if (statsMs <= 0 || now() - lastStatus < statsMs) return false;
    lastStatus = now();
    return true;
  };
  if (opts.json) {
    return {
      emit: (e) => {
        if (!due(e)) return;
        log?.write(e);
        process.stdout.write(JSON.stringify({ ...e, time: new Date(now()).toISOString() }) + '\n');
      },
      end: () => log?.close(),
    };
  }
  const live = opts.tty && verbosity >= 0 ? new LiveLine(out) : undefined;
  const width = () => Math.max(20, (out.columns ?? 80) - 1);
  // on a terminal, fur's lines break between words to fit its width (a line the terminal wraps
  // itself would scroll the live line away)
  const fit = (line: string) => (opts.tty ? wrap(line, width()) : line);
  const say = (line: string) => (live ? live.print(fit(line)) : out.write(fit(line) + '\n'));
  let snapshot: ProgressSnapshot | undefined;
  const redraw = () => { if (live && snapshot) live.show(statusLine(snapshot, width())); };
  // the terminal was resized (SIGWINCH): node has the new width already
  out.on?.('resize', redraw);

  const folds = new Map<string, Fold>();
  /** the first of its kind is said; later ones counted (all said with -v) */
  const folded = (key: string, line: string, kept: boolean) => {
    const f = folds.get(key);
    if (!f) { folds.set(key, { first: line, more: 0, kept }); say(line); return; }
    f.more++;
    if (verbosity > 0) say(line);
  };
  const sayFolds = () => {
    for (const [key, f] of folds) {
      if (f.more === 0 || verbosity > 0) continue;
      say(f.kept
        ? `fur: kept ${plural(f.more, 'more file')} for the same reason (${key.slice(5)})${log ? '; the log file lists each' : '; -v lists each'}`
        : `fur: the same warning ${plural(f.more, 'more time')}${log ? '; the log file lists each' : ''}`);
      f.more = 0;
    }
  };

  let scan: { since: number; told: number } | undefined;

  return {
    emit(e) {
      const said = due(e);
      if (said) log?.write(e);
      switch (e.type) {
        case 'scan': {
          const t = now();
          scan ??= { since: t, told: 0 };
          // quiet while it is short, then every SCAN_EVERY_MS; the end once anything was told
          const every = t - scan.since >= SCAN_QUIET_MS && t - scan.told >= SCAN_EVERY_MS;
          const end = e.done === e.total && scan.told > 0;
          if (verbosity < 0 || !(every || end)) return;
          scan.told = t;
          say(`fur: reading what earlier runs stored: ${e.done} of ${e.total} files`);
          return;
        }
        case 'start':
          if (verbosity >= 0) {
            say(`fur: ${e.method} ${printable(e.source)} → ${printable(e.destination)}` +
              (e.resumed.frames || e.resumed.files ? ` (resuming: ${plural(e.resumed.frames, 'frame')} already there)` : ''));
          }
          return;
        case 'status':
          snapshot = e;
          if (live) redraw();
          else if (verbosity >= 0 && said) {
            out.write(`${new Date(now()).toISOString()} fur: ${statusLine(e)}\n`);
          }
          return;
        case 'commit':
          if (verbosity > 0) say(`fur: committed batch ${e.batch}: ${plural(e.frames, 'frame')} from ${plural(e.files, 'file')}, ${mb(e.bytes)} (${e.reason})`);
          return;
        case 'skipped':
          if (verbosity > 0) say(`fur: skipped ${printable(e.file)}: ${e.reason}`);
          return;
        case 'deleted':
          if (verbosity > 0 && e.files > 0) say(`fur: deleted ${plural(e.files, 'local file')} (${e.reason})`);
          return;
        case 'rejected':
          folded(`kept ${e.tag}`, `fur: kept ${keptLine(e)}`, true);
          return;
        case 'retried':
          say(`fur: ${printable(e.file)} changed after it was kept; reading it again`);
          return;
        case 'disconnected':
          say(`fur: destination unreachable for ${e.downSec} s (${printable(e.message)}); retrying in ${e.retryInSec} s (attempt ${e.attempt})`);
          return;
        case 'reconnected':
          say(`fur: reconnected after ${e.afterSec} s; resuming after the last commit`);
          return;
        case 'sweeping':
          if (live) live.show(`removing temporary files an interrupted run left: ${e.done} of ${e.of}`.slice(0, width()));
          return;
        case 'swept':
          if (e.files) say(`fur: removed ${plural(e.files, 'temporary file')} an interrupted run left (${mb(e.bytes)})`);
          return;
        case 'warning':
          folded(e.tag === 'delete-failed' ? `warn ${e.tag}` : `warn ${e.message}`, `fur: warning: ${printable(e.message)}`, false);
          return;
        case 'done':
          live?.clear();
          snapshot = undefined;
          sayFolds();
          // the kept files again, all together: the first reports may have scrolled away hours ago
          if (e.kept.length) {
            say(`fur: ${plural(e.kept.length, 'file')} kept in place, not uploaded:`);
            for (const k of e.kept.slice(0, KEPT_LISTED)) say(`  ${keptLine(k)}`);
            if (e.kept.length > KEPT_LISTED) say(`  … and ${e.kept.length - KEPT_LISTED} more (--json lists them all)`);
          }
          if (verbosity >= 0) {
            say(`fur: ${plural(e.frames, 'frame')} from ${plural(e.files, 'file')}, ${mb(e.bytes)} in ${e.seconds.toFixed(1)} s (${rate(e.bytes / Math.max(e.seconds, 1e-3))})` +
              (e.progress.reconnects ? `, ${plural(e.progress.reconnects, 'reconnection')}` : '') +
              (e.rejected ? `, ${plural(e.rejected, 'file')} kept because ${e.rejected === 1 ? 'it' : 'they'} could not be used` : '') + ` [${e.endReason}]`);
          }
          return;
      }
    },
    end() {
      live?.clear();
      sayFolds();
      out.off?.('resize', redraw);
      log?.close();
    },
  };
}
