/**
 * Which spills the S3 append's journal keeps. A spill (`<key>.fur/spill-…`) holds bytes written
 * but in no part yet; a part is sent later and then the spill's copy of those bytes is dead
 * weight. Kept whole, spills that still held a few live bytes — rows of the per-frame datasets,
 * whose 1,024-row chunks keep their part waiting for 1,024 frames — piled up dead bytes: half as
 * much again as the data, left in `<key>.fur/` until the capture ended.
 *
 * So at every commit:
 *  - a spill with no live byte is deleted;
 *  - a spill at least half dead has its live bytes stored again with the new ones, and is
 *    deleted; so, most dead first, do others while the dead bytes kept exceed `deadLimit`, and,
 *    smallest first, while more than `maxKept` remain (a resumed run reads every one);
 *  - new bytes are grouped by where they will go — each waiting part on its own, the unassigned
 *    tail apart — so a spill dies whole when its part is sent instead of lingering half dead.
 * Rewriting only what is at least half dead costs at most the bytes it frees.
 */
import { Ranges, type Extent, type HeldPart } from '../transport/s3-append.js';

/** A stored batch of extents; `ranges` are the bytes it holds. */
export interface Spill { key: string; ranges: [number, number][] }

export interface SpillPlan {
  /** spills kept as they are */
  keep: Spill[];
  /** spills to delete once the record no longer names them */
  drop: Spill[];
  /** live bytes of dropped spills, to be stored again */
  again: [number, number][];
  /** dead bytes in the spills kept: sent in a part, or written again since */
  dead: number;
}

const size = (rs: [number, number][]) => rs.reduce((n, [a, b]) => n + b - a, 0);

/**
 * `spills` in the order they were stored; `fresh` the ranges about to be stored (they win over
 * every spill); `sent` the ranges in acknowledged parts.
 */
export function planSpills(spills: Spill[], fresh: [number, number][], sent: [number, number][], deadLimit: number, maxKept = 32): SpillPlan {
  const covered = new Ranges();
  for (const [a, b] of [...fresh, ...sent]) covered.add(a, b);
  const views: { spill: Spill; live: [number, number][]; dead: number }[] = [];
  for (let i = spills.length - 1; i >= 0; i--) {
    const spill = spills[i]!;
    const live = spill.ranges.flatMap(([a, b]) => covered.gaps(a, b));
    for (const [a, b] of spill.ranges) covered.add(a, b);
    views.unshift({ spill, live, dead: size(spill.ranges) - size(live) });
  }
  const keep = views.filter((v) => size(v.live) > 0 && v.dead < size(v.live));
  const rewrite = views.filter((v) => size(v.live) > 0 && !keep.includes(v));
  let dead = keep.reduce((n, v) => n + v.dead, 0);
  for (const v of [...keep].sort((x, y) => y.dead - x.dead)) {
    if (dead <= deadLimit) break;
    if (v.dead === 0) continue;
    keep.splice(keep.indexOf(v), 1);
    rewrite.push(v);
    dead -= v.dead;
  }
  for (const v of [...keep].sort((x, y) => size(x.live) - size(y.live))) {
    if (keep.length <= maxKept) break;
    keep.splice(keep.indexOf(v), 1);
    rewrite.push(v);
    dead -= v.dead;
  }
  return {
    keep: keep.map((v) => v.spill),
    drop: views.filter((v) => !keep.includes(v)).map((v) => v.spill),
    again: rewrite.flatMap((v) => v.live).sort((x, y) => x[0] - y[0]),
    dead,
  };
}

/** Extents grouped by where their bytes go: one group per waiting part, in part order, then the tail. */
export function groupExtents(xs: Extent[], held: HeldPart[], tailStart: number): { part?: number; extents: Extent[] }[] {
  const bounds = [...held].sort((a, b) => a.offset - b.offset);
  const groups = new Map<number | undefined, Extent[]>();
  const put = (part: number | undefined, x: Extent) => {
    if (!groups.has(part)) groups.set(part, []);
    groups.get(part)!.push(x);
  };
  for (const x of xs) {
    let at = x.offset;
    const end = x.offset + x.bytes.length;
    while (at < end) {
      const h = bounds.find((p) => at >= p.offset && at < p.offset + p.size);
      const stop = h ? Math.min(end, h.offset + h.size) : at < tailStart ? Math.min(end, tailStart, bounds.find((p) => p.offset > at)?.offset ?? end) : end;
      put(h?.n, { offset: at, bytes: x.bytes.subarray(at - x.offset, stop - x.offset) });
      at = stop;
    }
  }
  return [...groups].sort(([a], [b]) => (a ?? Infinity) - (b ?? Infinity)).map(([part, extents]) => (part === undefined ? { extents } : { part, extents }));
}
