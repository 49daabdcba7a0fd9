/** Rendering run events: a live status line on a terminal, or one JSON object per line. */
import type { RunEvent } from '../pipeline/progress.js';

const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;

export function renderer(opts: { json: boolean; tty: boolean; quiet?: boolean }): (e: RunEvent) => void {
  if (opts.json) return (e) => process.stdout.write(JSON.stringify({ ...e, time: new Date().toISOString() }) + '\n');
  let lineOpen = false;
  const endLine = () => { if (lineOpen) { process.stderr.write('\n'); lineOpen = false; } };
  return (e) => {
    switch (e.type) {
      case 'start':
        if (!opts.quiet) {
          process.stderr.write(`fur: ${e.method} ${e.source} → ${e.destination}` +
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
        // reader messages start with the file's path already
        process.stderr.write(`fur: kept ${e.message.startsWith(`${e.file}: `) ? e.message : `${e.file}: ${e.message}`}\n`);
        return;
      case 'disconnected':
        endLine();
        process.stderr.write(`fur: destination unreachable for ${e.downSec} s (${e.message}); retrying in ${e.retryInSec} s (attempt ${e.attempt})\n`);
        return;
      case 'reconnected':
        endLine();
        process.stderr.write(`fur: reconnected after ${e.afterSec} s; resuming after the last commit\n`);
        return;
      case 'warning':
        endLine();
        process.stderr.write(`fur: warning: ${e.message}\n`);
        return;
      case 'done':
        endLine();
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
