/** Chunk geometry: default chunk shapes and copying between frames and chunks. */

export const DEFAULT_CHUNK_BYTES = 4 << 20;

/**
 * Default chunk for a dataset growing along axis 0: whole frames, as many as fit in ~4 MiB
 * (1-8 MiB suits both local readers and cloud range reads). A frame larger than that is split
 * along its slowest axes first, so each chunk still holds contiguous rows of pixels.
 */
export function defaultChunks(frameShape: number[], itemsize: number, target = DEFAULT_CHUNK_BYTES): number[] {
  const frameBytes = frameShape.reduce((a, b) => a * b, 1) * itemsize;
  if (frameBytes <= target) return [Math.max(1, Math.floor(target / Math.max(1, frameBytes))), ...frameShape];
  const chunk = [...frameShape];
  let bytes = frameBytes;
  for (let axis = 0; axis < chunk.length && bytes > target; axis++) {
    while (chunk[axis] > 1 && bytes > target) {
      const next = Math.ceil(chunk[axis] / 2);
      bytes = (bytes / chunk[axis]) * next;
      chunk[axis] = next;
    }
  }
  return [1, ...chunk];
}

export function product(a: number[]): number { return a.reduce((x, y) => x * y, 1); }

/**
 * Copy the part of `rows` frames (C order, frame shape `frame`) that falls into the chunk at grid
 * position `grid` into a chunk buffer (shape `chunk`), or the reverse when `toChunk` is false.
 * Elements outside the frame keep whatever the chunk buffer holds (the fill value).
 */
export function copyChunk(
  frames: Uint8Array, rows: number, frame: number[], chunk: number[], grid: number[],
  itemsize: number, chunkBuf: Uint8Array, toChunk = true,
): void {
  const n = frame.length;
  const lastLen = n ? Math.min(chunk[n], frame[n - 1] - grid[n - 1] * chunk[n]) : 1;
  const runBytes = lastLen * itemsize;
  const frameStrides = new Array<number>(n);
  const chunkStrides = new Array<number>(n + 1);
  let fs = itemsize;
  for (let i = n - 1; i >= 0; i--) { frameStrides[i] = fs; fs *= frame[i]; }
  const frameBytes = fs;
  let cs = itemsize;
  for (let i = n; i >= 0; i--) { chunkStrides[i] = cs; cs *= chunk[i]; }
  const extent = new Array<number>(n); // how many indices of each frame axis fall in this chunk
  for (let i = 0; i < n; i++) extent[i] = Math.min(chunk[i + 1], frame[i] - grid[i] * chunk[i + 1]);
  const rowLimit = Math.min(rows, chunk[0]);
  const idx = new Array<number>(Math.max(0, n - 1)).fill(0);
  for (let r = 0; r < rowLimit; r++) {
    idx.fill(0);
    for (;;) {
      let src = r * frameBytes;
      let dst = r * chunkStrides[0];
      for (let i = 0; i < n - 1; i++) {
        src += (grid[i] * chunk[i + 1] + idx[i]) * frameStrides[i];
        dst += idx[i] * chunkStrides[i + 1];
      }
      if (n) src += grid[n - 1] * chunk[n] * frameStrides[n - 1];
      if (toChunk) chunkBuf.set(frames.subarray(src, src + runBytes), dst);
      else frames.set(chunkBuf.subarray(dst, dst + runBytes), src);
      let k = n - 2;
      while (k >= 0 && ++idx[k] >= extent[k]) { idx[k] = 0; k--; }
      if (k < 0) break;
    }
  }
}

/** grid coordinates (frame axes) of column `col` in a chunk row */
export function gridOf(col: number, grid: number[]): number[] {
  const out = new Array<number>(grid.length);
  for (let i = grid.length - 1; i >= 0; i--) { out[i] = col % grid[i]; col = Math.floor(col / grid[i]); }
  return out;
}
