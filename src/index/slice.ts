/** numpy-style slices (`100:200,:,5`) over a dataset's shape. */
import { FurError } from '../errors.js';

export interface Range { start: number; stop: number }

export function parseSlice(text: string | undefined, shape: number[]): Range[] {
  const parts = text === undefined || text.trim() === '' ? [] : text.split(',');
  if (parts.length > shape.length) {
    throw new FurError('bad-slice', `--slice '${text}' has ${parts.length} axes; the dataset has ${shape.length}`, { slice: text });
  }
  return shape.map((n, axis) => {
    const p = (parts[axis] ?? ':').trim();
    const norm = (v: number) => (v < 0 ? Math.max(0, n + v) : Math.min(n, v));
    const num = (s: string, dflt: number) => {
      if (s === '') return dflt;
      if (!/^-?\d+$/.test(s)) throw new FurError('bad-slice', `--slice '${text}': '${s}' on axis ${axis} is not an integer (steps are not supported)`, { slice: text });
      return Number(s);
    };
    if (!p.includes(':')) {
      const i = num(p, 0);
      const k = i < 0 ? n + i : i;
      if (k < 0 || k >= n) throw new FurError('bad-slice', `--slice '${text}': index ${i} is outside axis ${axis} of length ${n}`, { slice: text });
      return { start: k, stop: k + 1 };
    }
    const [a, b, step] = p.split(':');
    if (step !== undefined && step.trim() !== '' && step.trim() !== '1') {
      throw new FurError('bad-slice', `--slice '${text}': steps are not supported`, { slice: text });
    }
    const start = norm(num(a.trim(), 0));
    const stop = norm(num(b.trim(), n));
    return { start, stop: Math.max(start, stop) };
  });
}
