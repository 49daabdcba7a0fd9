/**
 * What the operator controls about a run beyond what it uploads: the bandwidth limit, how often
 * progress is reported where there is no terminal, how much is said (-v/-q), the log file, and
 * the dry run. Each command that uploads a folder takes these options; `fur stream` takes those
 * about what is said and logged (a detector's stream has no folder to list, and is not held back).
 */
import { Command } from 'commander';
import { FurError } from '../errors.js';
import { parseBandwidth, type BandwidthSchedule } from '../transport/bwlimit.js';
import { openLog } from './log.js';
import { renderer, type Renderer } from './render.js';

export interface ControlFlags {
  bwlimit?: string;
  stats?: string;
  verbose?: boolean;
  quiet?: boolean;
  logFile?: string;
  dryRun?: boolean;
  json?: boolean;
}

export function addRunControls(c: Command): Command {
  return addReporting(c.option('--bwlimit <rate>', 'bandwidth limit for the whole run, rclone\'s notation: 10M (MiB/s), 512k, off, or a timetable "08:00,10M 19:00,off"'))
    .option('--dry-run', 'list what would be uploaded, where and how, check the destination is writable, and write nothing');
}

/** How much a run says, and its log: every command that stores frames (stream too) takes these. */
export function addReporting(c: Command): Command {
  return c
    .option('--stats <seconds>', 'without a terminal: a timestamped progress line this often (0: none)', '10')
    .option('-v, --verbose', 'also say every commit, skipped file and deletion')
    .option('-q, --quiet', 'no progress, start or summary lines (warnings and errors still)')
    .option('--log-file <file>', 'append every event (commits, reconnections, kept files, deletions, with reasons) as JSON lines with timestamps');
}

export interface Controls {
  schedule?: BandwidthSchedule;
  statsMs: number;
  verbosity: number;
}

/** The controls' settings, checked before anything connects. */
export function controls(f: ControlFlags): Controls {
  if (f.verbose && f.quiet) throw new FurError('bad-option', '--verbose and --quiet: give one or the other', { setting: '--quiet' });
  const stats = Number(f.stats ?? '10');
  if (f.stats !== undefined && (!Number.isFinite(stats) || stats < 0 || f.stats.trim() === '')) {
    throw new FurError('bad-option', `--stats ${JSON.stringify(f.stats)}: must be a number of seconds ≥ 0 (0: no status lines)`, { setting: '--stats', value: f.stats });
  }
  return {
    schedule: f.bwlimit === undefined ? undefined : parseBandwidth(f.bwlimit),
    statsMs: stats * 1000,
    verbosity: f.quiet ? -1 : f.verbose ? 1 : 0,
  };
}

/** The run's renderer, with its log file open. */
export function runRenderer(f: ControlFlags, c: Controls): Renderer {
  const log = f.logFile === undefined ? undefined : openLog(f.logFile);
  return renderer({ json: f.json ?? false, tty: process.stderr.isTTY ?? false, verbosity: c.verbosity, statsMs: c.statsMs, log });
}
