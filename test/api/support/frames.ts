/** Frames the API tests push: frame i has every pixel a function of i and its place. */
export const SHAPE = [16, 24];

export function frame(i: number, shape = SHAPE): Uint16Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const f = new Uint16Array(n);
  for (let p = 0; p < n; p++) f[p] = (i * 7919 + p * 31) & 0xffff;
  return f;
}
