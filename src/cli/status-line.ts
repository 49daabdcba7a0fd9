/**
 * A progress snapshot as one line of text that fits a given width. The line is built of parts in
 * order of importance; each has a long and a short form. Too wide, the least important part
 * takes its short form, then goes, until the line fits (the first part is cut if need be).
 * Only fur's own words and figures appear here (no file names), so a character is a column.
 */
import type { ProgressSnapshot } from '../pipeline/progress.js';

interface Part {
  long: string;
  short?: string;
}

const SEP = ' · ';

export function mb(bytes: number): string {
  if (bytes >= 1e12) return `${(bytes / 1e12).toFixed(2)} TB`;
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function rate(bytesPerSec: number): string {
  return `${(bytesPerSec / 1e6).toFixed(1)} MB/s`;
}

/** 7s, 1m05s, 2h03m */
export function duration(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** ~8 min, ~3 h */
function roughly(sec: number): string {
  if (sec < 90) return `~${Math.max(1, Math.round(sec))} s`;
  if (sec < 5400) return `~${Math.round(sec / 60)} min`;
  if (sec < 172_800) return `~${Math.round(sec / 3600)} h`;
  return `~${Math.round(sec / 86_400)} days`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

const count = (n: number) => n.toLocaleString('en-US');

function parts(s: ProgressSnapshot): Part[] {
  const out: Part[] = [];
  const f = s.frames;
  if (s.instrument) {
    const i = s.instrument;
    const disk = s.disk?.fullInSec !== undefined ? `, local disk full in ${roughly(s.disk.fullInSec)}` : '';
    if (i.keepingUp) out.push({ long: 'keeping up', short: 'ok' });
    else out.push({ long: `falling behind by ${rate(i.behindBy)}, backlog ${mb(s.backlog.bytes)}${disk}`, short: `behind ${rate(i.behindBy)}` });
  }
  if (s.percent !== undefined) out.push({ long: `${s.percent.toFixed(1)}%` });
  out.push({
    long: `frames ${count(f.committed)} committed, ${count(f.seen)} seen${f.total !== undefined ? ` of ${count(f.total)}` : ''}`,
    short: `${count(f.committed)}${f.total !== undefined ? `/${count(f.total)}` : ''} frames`,
  });
  out.push({ long: rate(s.rate.current) });
  if (s.etaSec !== undefined) out.push({ long: `ETA ${duration(s.etaSec)}` });
  out.push({
    long: `${mb(s.bytes.done)}${s.bytes.total !== undefined ? ` of ${mb(s.bytes.total)}` : ''}`,
  });
  if (s.instrument) {
    out.push({ long: `instrument ${rate(s.instrument.rate)}` });
    if (s.instrument.keepingUp) out.push({ long: `backlog ${plural(s.backlog.files, 'file')} (${mb(s.backlog.bytes)})`, short: `backlog ${mb(s.backlog.bytes)}` });
  }
  if (s.disk) {
    out.push({
      long: `disk ${mb(s.disk.free)} free${s.disk.fullInSec !== undefined && s.instrument?.keepingUp ? `, full in ${roughly(s.disk.fullInSec)}` : ''}`,
      short: `${mb(s.disk.free)} free`,
    });
  }
  if (s.files.kept > 0) out.push({ long: `${plural(s.files.kept, 'file')} kept`, short: `${count(s.files.kept)} kept` });
  if (s.reconnects > 0) out.push({ long: plural(s.reconnects, 'reconnect'), short: `${count(s.reconnects)}×rc` });
  out.push({ long: `avg ${rate(s.rate.average)}` });
  if (s.limit !== undefined) out.push({ long: `limit ${rate(s.limit)}` });
  out.push({ long: `elapsed ${duration(s.elapsedSec)}`, short: duration(s.elapsedSec) });
  return out;
}

/** The snapshot in at most `width` columns (no limit: every part in its long form). */
export function statusLine(s: ProgressSnapshot, width = Infinity): string {
  const ps = parts(s).map((p) => ({ ...p, text: p.long }));
  const line = () => ps.map((p) => p.text).join(SEP);
  let text = line();
  for (let i = ps.length - 1; i >= 0 && text.length > width; i--) {
    if (ps[i]!.short !== undefined && ps[i]!.text !== ps[i]!.short) {
      ps[i]!.text = ps[i]!.short!;
      text = line();
      if (text.length <= width) break;
    }
  }
  while (text.length > width && ps.length > 1) {
    ps.pop();
    text = line();
  }
  return text.length > width ? text.slice(0, Math.max(0, width - 1)) + '…' : text;
}
