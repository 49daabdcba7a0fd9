/**
 * Version 1 B-tree nodes ("TREE", node type 1) indexing raw data chunks.
 * Keys are chunk offsets in *elements* (chunk grid index × chunk dimension) plus the stored
 * chunk size and filter mask; a node with N children has N+1 keys, key i ≤ child i < key i+1.
 * Every node is written at its full size (2K entries, K = 32 as libhdf5 assumes without a
 * superblock extension), because readers fetch the full size.
 */
import { ByteReader, ByteWriter, UNDEF_ADDR } from './bytes.js';
import { formatError } from './errors.js';

export const TWO_K = 64;
const HEADER = 24;

export interface ChunkKey { size: number; mask: number; offset: number[] }

export interface BTreeNode {
  level: number;
  left: number;
  right: number;
  keys: ChunkKey[];
  children: number[];
}

export function keySize(rank: number): number { return 8 + 8 * (rank + 1); }
export function nodeSize(rank: number): number { return HEADER + TWO_K * 8 + (TWO_K + 1) * keySize(rank); }

export function encodeNode(n: BTreeNode, rank: number): Uint8Array {
  const w = new ByteWriter(nodeSize(rank));
  w.ascii('TREE').u8(1).u8(n.level).u16(n.children.length).u64(n.left).u64(n.right);
  const putKey = (k: ChunkKey) => {
    w.u32(k.size).u32(k.mask);
    for (const o of k.offset) w.u64(o);
    w.u64(0); // the element-size "dimension" always starts at 0
  };
  for (let i = 0; i < n.children.length; i++) { putKey(n.keys[i]); w.u64(n.children[i]); }
  putKey(n.keys[n.children.length]);
  w.zeros(nodeSize(rank) - w.pos);
  return w.finish();
}

export function decodeNode(b: Uint8Array, rank: number, address: number): BTreeNode {
  const r = new ByteReader(b, 0, `B-tree node at ${address}`);
  if (r.ascii(4) !== 'TREE') throw formatError('chunk index', `no TREE signature at ${address}`);
  if (r.u8() !== 1) throw formatError('chunk index', `node at ${address} is not a chunk index node`);
  const level = r.u8();
  const used = r.u16();
  const left = r.u64();
  const right = r.u64();
  const keys: ChunkKey[] = [];
  const children: number[] = [];
  const getKey = (): ChunkKey => {
    const size = r.u32(); const mask = r.u32();
    const offset: number[] = [];
    for (let i = 0; i < rank; i++) offset.push(r.u64());
    r.u64();
    return { size, mask, offset };
  };
  for (let i = 0; i < used; i++) { keys.push(getKey()); children.push(r.u64()); }
  keys.push(getKey());
  return { level, left, right, keys, children };
}

export { UNDEF_ADDR };
