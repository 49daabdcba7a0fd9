/**
 * The deterministic frame content shared by fur's tests and the Python live reader
 * (test/interop/support/live_reader.py): byte j of row i is (i*31 + j*7 + seed) & 0xFF.
 * Any row can be recomputed from its index alone, so a reader that sees a row out of place,
 * a row of zeros (an unwritten chunk) or a torn row can tell, without shared state.
 */
export function patternRow(i: number, rowBytes: number, seed = 0): Uint8Array {
  const out = new Uint8Array(rowBytes);
  fillPatternRow(out, i, seed);
  return out;
}

/** Fills `out` with row i (for writers that reuse a buffer). */
export function fillPatternRow(out: Uint8Array, i: number, seed = 0): void {
  // reduce first: i*31 stays exact for any row index a test can reach
  const base = (((i % 256) * 31 + (seed % 256) + 256) & 0xff) >>> 0;
  for (let j = 0; j < out.length; j++) out[j] = (base + j * 7) & 0xff;
}

/** Rows [start, start + count) back to back. */
export function patternRows(start: number, count: number, rowBytes: number, seed = 0): Uint8Array {
  const out = new Uint8Array(count * rowBytes);
  for (let k = 0; k < count; k++) fillPatternRow(out.subarray(k * rowBytes, (k + 1) * rowBytes), start + k, seed);
  return out;
}

/** Index of the first row in `data` (holding rows from `start`) that differs from the pattern, or -1. */
export function firstPatternMismatch(data: Uint8Array, start: number, rowBytes: number, seed = 0): number {
  const row = new Uint8Array(rowBytes);
  const n = Math.floor(data.length / rowBytes);
  for (let k = 0; k < n; k++) {
    fillPatternRow(row, start + k, seed);
    const got = data.subarray(k * rowBytes, (k + 1) * rowBytes);
    for (let j = 0; j < rowBytes; j++) if (got[j] !== row[j]) return start + k;
  }
  return data.length % rowBytes === 0 ? -1 : start + n;
}
