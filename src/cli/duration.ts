/** Durations typed on the command line: seconds, as a positive number. */
import { FurError } from '../errors.js';

/** The longest a timer can wait (Node's setTimeout takes at most 2^31 - 1 ms; longer fires at once). */
const MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/**
 * Seconds from `text`, as given for `option`. Zero, negative and non-numbers are refused: a zero
 * timeout or period means nothing a person would ask for, and would make fur give up, or take a
 * file, at once.
 */
export function duration(text: string, option: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || n > MAX_SECONDS) {
    throw new FurError('bad-option', `${option} '${text}': must be a number of seconds greater than 0 (at most ${MAX_SECONDS})`, { setting: option, value: text });
  }
  return n;
}
