/**
 * An append-only chunk index over a v1 B-tree, for datasets that grow along their first axis.
 *
 * Chunks are added a "chunk row" at a time (all chunks sharing a first-axis chunk index), in
 * key order, so the tree is packed by arithmetic: which leaf holds a row, and which node holds a
 * leaf, follow from the row number alone. Only the rightmost nodes ever change, so the writer
 * keeps node addresses (one number per 64 chunks) and the entries of the last leaf in memory,
 * never the whole index. Rewriting a node in place is safe for readers of the previous commit:
 * entries they can see keep their meaning, and new entries lie beyond their extent.
 */
import { TWO_K, UNDEF_ADDR, decodeNode, encodeNode, nodeSize, type ChunkKey } from './btree-v1.js';

export interface ChunkEntry { address: number; size: number; mask: number }
export interface NodeWrite { address: number; bytes: Uint8Array }
type Read = (offset: number, length: number) => Promise<Uint8Array>;

export class ChunkIndex {
  /** chunk grid along the frame axes (every axis but the first) */
  readonly grid: number[];
  /** chunks per chunk row */
  readonly perRow: number;
  private readonly rowsPerLeaf: number; // when perRow ≤ 64
  private readonly leavesPerRow: number; // when perRow > 64
  /** chunk rows present */
  rows = 0;
  /** node addresses per level; levels[0] are leaves */
  private levels: number[][] = [[]];
  private open = new Map<number, ChunkEntry[]>();
  private dirtyLeaves = new Set<number>();
  private planned = false;
  /**
   * Node addresses a reopened index found beyond its committed rows (a commit that never
   * published had added them), per level in order: taken again for the same places as the index
   * grows, so that space is not lost.
   */
  private spare: number[][] = [];

  constructor(readonly chunk: number[], frameShape: number[]) {
    this.grid = frameShape.map((d, i) => Math.max(1, Math.ceil(d / chunk[i + 1])));
    this.perRow = this.grid.reduce((a, b) => a * b, 1);
    this.rowsPerLeaf = this.perRow <= TWO_K ? Math.floor(TWO_K / this.perRow) : 0;
    this.leavesPerRow = this.perRow <= TWO_K ? 0 : Math.ceil(this.perRow / TWO_K);
  }

  get rank(): number { return this.chunk.length; }

  private leafCount(rows: number): number {
    return this.rowsPerLeaf ? Math.ceil(rows / this.rowsPerLeaf) : rows * this.leavesPerRow;
  }
  private leavesOfRow(r: number): number[] {
    if (this.rowsPerLeaf) return [Math.floor(r / this.rowsPerLeaf)];
    return Array.from({ length: this.leavesPerRow }, (_, i) => r * this.leavesPerRow + i);
  }
  /** [row, first column, last column] ranges a leaf holds, in key order */
  private leafRange(leaf: number): { rows: [number, number]; cols: [number, number] } {
    if (this.rowsPerLeaf) {
      const first = leaf * this.rowsPerLeaf;
      return { rows: [first, Math.min(first + this.rowsPerLeaf, this.rows) - 1], cols: [0, this.perRow - 1] };
    }
    const row = Math.floor(leaf / this.leavesPerRow);
    const c0 = (leaf % this.leavesPerRow) * TWO_K;
    return { rows: [row, row], cols: [c0, Math.min(c0 + TWO_K, this.perRow) - 1] };
  }

  /** element offset of chunk (row, column-within-row) */
  offsetOf(row: number, col: number): number[] {
    const out = new Array<number>(this.rank);
    out[0] = row * this.chunk[0];
    for (let i = this.grid.length - 1; i >= 0; i--) {
      out[i + 1] = (col % this.grid[i]) * this.chunk[i + 1];
      col = Math.floor(col / this.grid[i]);
    }
    return out;
  }
  private upperOf(row: number, col: number): number[] {
    return this.offsetOf(row, col).map((o, i) => o + this.chunk[i]);
  }

  /** entries of a row still held in memory (the open tail row and its leaf-mates) */
  rowEntries(row: number): ChunkEntry[] | undefined { return this.open.get(row); }

  /** add chunk row `row` (== rows) or replace the last one (== rows - 1) */
  putRow(row: number, entries: ChunkEntry[]): void {
    if (entries.length !== this.perRow) throw new RangeError(`chunk row needs ${this.perRow} entries, got ${entries.length}`);
    if (row === this.rows) {
      this.rows++;
    } else if (row !== this.rows - 1) {
      throw new RangeError(`chunk row ${row} is neither the next (${this.rows}) nor the last`);
    }
    this.open.set(row, entries);
    for (const l of this.leavesOfRow(row)) this.dirtyLeaves.add(l);
  }

  get dirty(): boolean { return this.dirtyLeaves.size > 0; }

  /** every node's address */
  nodeAddresses(): number[] { return this.levels.flat(); }

  /** forget spare nodes whose space is no longer this index's to take (see H5File.open) */
  dropSpares(freed: (address: number) => boolean): void {
    this.spare = this.spare.map((level) => level.filter((a) => !freed(a)));
  }

  /** rewrite the last chunk row's leaves (and the nodes above them) at the next commit */
  touchLast(): void {
    if (this.rows > 0) for (const l of this.leavesOfRow(this.rows - 1)) this.dirtyLeaves.add(l);
  }

  /** allocate space for new nodes; call before the commit's data barrier so the EOF is known */
  plan(allocMeta: (size: number) => number): void {
    const size = nodeSize(this.rank);
    let count = this.leafCount(this.rows);
    let level = 0;
    for (;;) {
      const addrs = this.levels[level] ?? (this.levels[level] = []);
      addrs.length = Math.min(addrs.length, count);
      while (addrs.length < count) addrs.push(this.spare[level]?.shift() ?? allocMeta(size));
      if (count <= 1) break;
      count = Math.ceil(count / TWO_K);
      level++;
    }
    this.levels.length = level + 1;
    this.planned = true;
  }

  root(): number {
    const top = this.levels[this.levels.length - 1];
    return top && top.length ? top[0] : UNDEF_ADDR;
  }

  /** the node writes of this commit: dirty leaves, their ancestors, and sibling links of new nodes */
  writes(previous: { levelCounts: number[] }): NodeWrite[] {
    if (!this.planned) throw new Error('ChunkIndex.plan() must run before writes()');
    this.planned = false;
    const out: NodeWrite[] = [];
    let dirty = new Set(this.dirtyLeaves);
    for (let level = 0; level < this.levels.length; level++) {
      const addrs = this.levels[level];
      const before = previous.levelCounts[level] ?? 0;
      for (let i = before; i < addrs.length; i++) dirty.add(i); // new nodes
      for (const i of [...dirty].sort((a, b) => a - b)) {
        out.push({ address: addrs[i], bytes: encodeNode(this.node(level, i), this.rank) });
      }
      // a clean left neighbour of a new node learns its new right sibling
      if (before > 0 && before < addrs.length && !dirty.has(before - 1)) {
        const b = new Uint8Array(8);
        const v = new DataView(b.buffer);
        v.setUint32(0, addrs[before] % 0x100000000, true);
        v.setUint32(4, Math.floor(addrs[before] / 0x100000000), true);
        out.push({ address: addrs[before - 1] + 16, bytes: b });
      }
      const up = new Set<number>();
      for (const i of dirty) up.add(Math.floor(i / TWO_K));
      dirty = up;
    }
    this.dirtyLeaves.clear();
    // written leaves before the last can never change again: forget their entries
    const lastLeaf = this.leavesOfRow(this.rows - 1)[0];
    const keepFrom = this.rowsPerLeaf ? lastLeaf * this.rowsPerLeaf : this.rows - 1;
    for (const r of this.open.keys()) if (r < keepFrom) this.open.delete(r);
    return out;
  }

  levelCounts(): number[] { return this.levels.map((l) => l.length); }

  private node(level: number, index: number): Parameters<typeof encodeNode>[0] {
    const addrs = this.levels[level];
    const left = index > 0 ? addrs[index - 1] : UNDEF_ADDR;
    const right = index + 1 < addrs.length ? addrs[index + 1] : UNDEF_ADDR;
    const keys: ChunkKey[] = [];
    const children: number[] = [];
    if (level === 0) {
      const { rows, cols } = this.leafRange(index);
      let last: [number, number] = [rows[0], cols[0]];
      for (let r = rows[0]; r <= rows[1]; r++) {
        const entries = this.open.get(r);
        if (!entries) throw new Error(`chunk row ${r} is not in memory`);
        for (let c = cols[0]; c <= cols[1]; c++) {
          keys.push({ size: entries[c].size, mask: entries[c].mask, offset: this.offsetOf(r, c) });
          children.push(entries[c].address);
          last = [r, c];
        }
      }
      keys.push({ size: 0, mask: 0, offset: this.upperOf(last[0], last[1]) });
    } else {
      const span = TWO_K ** level; // leaves under one child... of this level's children: 64^(level-1)
      const childSpan = span / TWO_K;
      const below = this.levels[level - 1];
      const first = index * TWO_K;
      const end = Math.min(first + TWO_K, below.length);
      for (let i = first; i < end; i++) {
        const leaf = i * childSpan;
        const { rows, cols } = this.leafRange(leaf);
        keys.push({ size: 0, mask: 0, offset: this.offsetOf(rows[0], cols[0]) });
        children.push(below[i]);
      }
      const lastLeaf = Math.min(end * childSpan, this.levels[0].length) - 1;
      const { rows, cols } = this.leafRange(lastLeaf);
      keys.push({ size: 0, mask: 0, offset: this.upperOf(rows[1], cols[1]) });
    }
    return { level, left, right, keys, children };
  }

  /** Chunk rows a committed index holds: one past the chunk row of its last (rightmost) chunk. */
  static async presentRows(read: Read, root: number, chunk: number[]): Promise<number> {
    if (root === UNDEF_ADDR) return 0;
    const size = nodeSize(chunk.length);
    let node = decodeNode(await read(root, size), chunk.length, root);
    while (node.level > 0 && node.children.length) {
      const a = node.children[node.children.length - 1];
      node = decodeNode(await read(a, size), chunk.length, a);
    }
    return node.children.length ? node.keys[node.children.length - 1].offset[0] / chunk[0] + 1 : 0;
  }

  /** Rebuild the writer's state from a committed file: `rows` chunk rows are committed. */
  static async open(read: Read, root: number, chunk: number[], frameShape: number[], rows: number): Promise<ChunkIndex> {
    const ix = new ChunkIndex(chunk, frameShape);
    if (root === UNDEF_ADDR || rows === 0) return ix;
    const size = nodeSize(chunk.length);
    const top = decodeNode(await read(root, size), chunk.length, root);
    const levels: number[][] = [];
    levels[top.level] = [root];
    let nodes = [top];
    for (let level = top.level; level > 0; level--) {
      const below: number[] = [];
      for (const n of nodes) below.push(...n.children);
      levels[level - 1] = below;
      if (level - 1 > 0) nodes = await Promise.all(below.map(async (a) => decodeNode(await read(a, size), chunk.length, a)));
    }
    ix.levels = levels;
    ix.rows = rows;
    // trim nodes a crashed commit may have added beyond the committed rows (kept as spares), and
    // a root it added over them
    let count = ix.leafCount(rows);
    for (let l = 0; l < levels.length; l++) {
      ix.spare[l] = levels[l].splice(count);
      count = Math.ceil(count / TWO_K);
    }
    while (levels.length > 1 && levels[levels.length - 2].length === 1) levels.pop();
    // load the entries of the last leaf (or the last row's leaves) so they can be rewritten
    const lastRow = rows - 1;
    const leaves = ix.rowsPerLeaf ? [ix.leafCount(rows) - 1] : ix.leavesOfRow(lastRow);
    for (const leaf of leaves) {
      const addr = levels[0][leaf];
      const node = decodeNode(await read(addr, size), chunk.length, addr);
      const { rows: rr, cols } = ix.leafRange(leaf);
      let k = 0;
      for (let r = rr[0]; r <= rr[1]; r++) {
        const entries = ix.open.get(r) ?? new Array<ChunkEntry>(ix.perRow);
        for (let c = cols[0]; c <= cols[1]; c++, k++) {
          entries[c] = { address: node.children[k], size: node.keys[k].size, mask: node.keys[k].mask };
        }
        ix.open.set(r, entries);
      }
    }
    return ix;
  }
}

/** Every chunk of a v1 B-tree index: offset (elements) → entry. For readers and verification. */
export async function collectChunks(read: Read, root: number, rank: number): Promise<Map<string, ChunkEntry & { offset: number[] }>> {
  const out = new Map<string, ChunkEntry & { offset: number[] }>();
  if (root === UNDEF_ADDR) return out;
  const size = nodeSize(rank);
  // a node's children are read at once (a round trip per level, not per node, where the reads
  // go to the network); their entries are taken in key order
  const visit = async (addr: number): Promise<(ChunkEntry & { offset: number[] })[]> => {
    const n = decodeNode(await read(addr, size), rank, addr);
    if (n.level > 0) return (await Promise.all(n.children.map(visit))).flat();
    return n.children.map((a, i) => ({ address: a, size: n.keys[i].size, mask: n.keys[i].mask, offset: n.keys[i].offset }));
  };
  for (const e of await visit(root)) out.set(e.offset.join(','), e);
  return out;
}
