/** Durations typed on the command line: seconds, as a positive number (see api/options.ts seconds). */
import { seconds } from '../api/options.js';

export function duration(text: string, option: string): number {
  return seconds(text.trim() === '' ? NaN : Number(text), option, text);
}
