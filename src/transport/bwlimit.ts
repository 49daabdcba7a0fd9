/**
 * `--bwlimit` in rclone's notation: a rate (`10M` = 10 MiB/s, `512k`, `off`; a bare number is
 * KiB/s), or a timetable of rates by time of day (`"08:00,10M 19:00,off"`: from 08:00 10 MiB/s,
 * from 19:00 no limit, and before 08:00 the day's last entry, as rclone does).
 */
import { FurError } from '../errors.js';

/** bytes per second, or undefined for no limit */
export type Rate = number | undefined;

export interface BandwidthSchedule {
  /** the limit in force at `ms` (milliseconds since the epoch; local time of day) */
  rateAt(ms: number): Rate;
  /** as the user wrote it, for messages and `fur config check` */
  readonly text: string;
}

const UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

function bad(text: string, why: string): FurError<'bad-option'> {
  return new FurError('bad-option', `--bwlimit ${JSON.stringify(text)}: ${why}`, { setting: '--bwlimit', value: text });
}

/** `10M`, `1.5G`, `512k`, `100` (KiB/s), `off` → bytes/s or undefined */
export function parseRate(text: string, whole = text): Rate {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '') return undefined;
  const m = /^(\d+(?:\.\d+)?)([bkmgtp])?(?:i?b?)?(?:\/s)?$/.exec(t);
  if (!m) throw bad(whole, `'${text}' is not a rate; use e.g. 10M (MiB/s), 512k (KiB/s) or off`);
  const n = Number(m[1]) * UNITS[m[2] ?? 'k']!;
  if (!(n >= 1)) throw bad(whole, `'${text}' is below 1 byte/s; use off for no limit`);
  return n;
}

/** Parse `--bwlimit`: one rate, or a timetable of `HH:MM,RATE` entries separated by spaces. */
export function parseBandwidth(text: string): BandwidthSchedule {
  const entries = text.trim().split(/\s+/);
  if (entries.length === 1 && !entries[0]!.includes(',')) {
    const rate = parseRate(entries[0]!, text);
    return { text, rateAt: () => rate };
  }
  const table = entries.map((e) => {
    const m = /^(\d{1,2}):(\d{2}),(.+)$/.exec(e);
    if (!m) throw bad(text, `'${e}' is not a timetable entry; use HH:MM,RATE, e.g. "08:00,10M 19:00,off"`);
    const h = Number(m[1]), min = Number(m[2]);
    if (h > 23 || min > 59) throw bad(text, `'${m[1]}:${m[2]}' is not a time of day`);
    return { minute: h * 60 + min, rate: parseRate(m[3]!, text) };
  }).sort((a, b) => a.minute - b.minute);
  for (let i = 1; i < table.length; i++) {
    if (table[i]!.minute === table[i - 1]!.minute) throw bad(text, 'two entries for the same time');
  }
  return {
    text,
    rateAt(ms) {
      const d = new Date(ms);
      const minute = d.getHours() * 60 + d.getMinutes();
      // before the day's first entry, the previous day's last one is still in force
      let rate = table[table.length - 1]!.rate;
      for (const e of table) if (e.minute <= minute) rate = e.rate;
      return rate;
    },
  };
}
