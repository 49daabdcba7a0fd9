/**
 * Superblock version 3 at offset 0: 8-byte offsets and lengths, no extension, consistency
 * flags always 0 so a reader never needs `h5clear` after a crash. Version 3 is what lets
 * libhdf5 open the file with SWMR read access.
 */
import { ByteReader, ByteWriter, UNDEF_ADDR } from './bytes.js';
import { lookup3 } from './checksum.js';
import { formatError } from './errors.js';

export const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
export const SUPERBLOCK_SIZE = 48;

export interface Superblock { eof: number; rootAddress: number }

export function encodeSuperblock(s: Superblock): Uint8Array {
  const w = new ByteWriter(SUPERBLOCK_SIZE);
  for (const b of SIGNATURE) w.u8(b);
  w.u8(3).u8(8).u8(8).u8(0);
  w.u64(0).u64(UNDEF_ADDR).u64(s.eof).u64(s.rootAddress);
  w.u32(lookup3(w.finish()));
  return w.finish();
}

export function decodeSuperblock(b: Uint8Array, where = 'file'): Superblock {
  if (b.length < SUPERBLOCK_SIZE || SIGNATURE.some((v, i) => b[i] !== v)) {
    throw formatError(where, 'not an HDF5 file (no signature at offset 0)');
  }
  const r = new ByteReader(b, 8, 'superblock');
  const version = r.u8();
  if (version < 2) throw formatError(where, `superblock version ${version}: not a file fur wrote (fur writes version 3)`);
  if (r.u8() !== 8 || r.u8() !== 8) throw formatError(where, 'offsets/lengths other than 8 bytes');
  r.u8();
  r.u64(); // base address
  r.u64(); // extension
  const eof = r.u64();
  const rootAddress = r.u64();
  const stored = r.u32();
  if (lookup3(b.subarray(0, 44)) !== stored) throw formatError(where, 'superblock checksum mismatch');
  return { eof, rootAddress };
}
