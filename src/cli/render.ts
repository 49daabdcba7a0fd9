/** Rendering run events: a live status line on a terminal, or one JSON object per line. */
import type { RunEvent } from '../pipeline/progress.js';

const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;

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

export function renderer(opts: { json: boolean; tty: boolean; quiet?: boolean }): (e: RunEvent) => void {
  if (opts.json) return (e) => process.stdout.write(JSON.stringify({ ...e, time: new Date().toISOString() }) + '\n');
  let lineOpen = false;
  const endLine = () => { if (lineOpen) { process.stderr.write('\n'); lineOpen = false; } };
  let scan: { since: number; told: number } | undefined;
  return (e) => {
    switch (e.type) {
      case 'scan': {
        const now = Date.now();
        scan ??= { since: now, told: 0 };
        // quiet while it is short, then every SCAN_EVERY_MS; the end once anything was told
        const due = now - scan.since >= SCAN_QUIET_MS && now - scan.told >= SCAN_EVERY_MS;
        const end = e.done === e.total && scan.told > 0;
        if (opts.quiet || !(due || end)) return;
        scan.told = now;
        endLine();
        process.stderr.write(`fur: reading what earlier runs stored: ${e.done} of ${e.total} files\n`);
        return;
      }
      case 'start':
        if (!opts.quiet) {
          process.stderr.write(`fur: ${e.method} ${printable(e.source)} → ${printable(e.destination)}` +
            (e.resumed.frames || e.resumed.files ? ` (resuming: ${e.resumed.frames} frames already there)` : '') + '\n');
        }
        return;
      case 'status':
        if (opts.tty && !opts.quiet) {
          const eta = e.etaSec === null ? '' : ` · ETA ${e.etaSec}s`;
          process.stderr.write(`\r\x1b[Kframes ${e.frames} · ${mb(e.bytes)} · ${e.mbPerSec.toFixed(1)} MB/s · backlog ${e.backlogFiles} files (${mb(e.backlogBytes)})${eta}`);
          lineOpen = true;
        }
        return;
      case 'rejected':
        endLine();
        process.stderr.write(`fur: kept ${keptLine(e)}\n`);
        return;
      case 'retried':
        endLine();
        process.stderr.write(`fur: ${printable(e.file)} changed after it was kept; reading it again\n`);
        return;
      case 'disconnected':
        endLine();
        process.stderr.write(`fur: destination unreachable for ${e.downSec} s (${printable(e.message)}); retrying in ${e.retryInSec} s (attempt ${e.attempt})\n`);
        return;
      case 'reconnected':
        endLine();
        process.stderr.write(`fur: reconnected after ${e.afterSec} s; resuming after the last commit\n`);
        return;
      case 'sweeping':
        if (opts.tty && !opts.quiet) {
          process.stderr.write(`\r\x1b[Kremoving temporary files an interrupted run left: ${e.done} of ${e.of}`);
          lineOpen = true;
        }
        return;
      case 'swept':
        endLine();
        if (e.files) process.stderr.write(`fur: removed ${e.files} temporary file${e.files === 1 ? '' : 's'} an interrupted run left (${mb(e.bytes)})\n`);
        return;
      case 'warning':
        endLine();
        process.stderr.write(`fur: warning: ${printable(e.message)}\n`);
        return;
      case 'done':
        endLine();
        // the kept files again, all together: the first reports may have scrolled away hours ago
        if (e.kept.length) {
          process.stderr.write(`fur: ${e.kept.length} file${e.kept.length > 1 ? 's' : ''} kept in place, not uploaded:\n`);
          for (const k of e.kept.slice(0, KEPT_LISTED)) process.stderr.write(`  ${keptLine(k)}\n`);
          if (e.kept.length > KEPT_LISTED) process.stderr.write(`  … and ${e.kept.length - KEPT_LISTED} more (--json lists them all)\n`);
        }
        if (!opts.quiet) {
          process.stderr.write(`fur: ${e.frames} frames from ${e.files} files, ${mb(e.bytes)} in ${e.seconds.toFixed(1)} s (${e.mbPerSec.toFixed(1)} MB/s)` +
            (e.rejected ? `, ${e.rejected} files kept because they could not be used` : '') + ` [${e.endReason}]\n`);
        }
        return;
      default:
        return;
    }
  };
}
