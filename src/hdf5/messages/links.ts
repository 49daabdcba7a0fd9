/**
 * Group messages for "compact" new-style groups: Link Info (0x0002), Group Info (0x000A)
 * and one Link (0x0006) per child, all in the group's object header. A link is hard (the
 * child's header address) or soft (a path, resolved by the reader when followed).
 */
import { ByteReader, ByteWriter, UNDEF_ADDR, widthFor } from '../bytes.js';
import { formatError } from '../errors.js';

export function encodeLinkInfo(w = new ByteWriter()): ByteWriter {
  // no creation order tracking; no fractal heap / name index: links stay in the header
  return w.u8(0).u8(0).u64(UNDEF_ADDR).u64(UNDEF_ADDR);
}

export function encodeGroupInfo(w = new ByteWriter()): ByteWriter {
  return w.u8(0).u8(0);
}

export type Link = { name: string; address: number } | { name: string; target: string };

export function isSoft(l: Link): l is { name: string; target: string } { return 'target' in l; }

export function encodeLink(l: Link, w = new ByteWriter()): ByteWriter {
  const name = Buffer.from(l.name, 'utf8');
  const lw = widthFor(name.length);
  const sizeBits = lw === 1 ? 0 : lw === 2 ? 1 : lw === 4 ? 2 : 3;
  // flags: size of the name-length field, charset present (UTF-8); link type present for a soft
  // link (type 1), omitted for a hard one
  if (isSoft(l)) {
    const target = Buffer.from(l.target, 'utf8');
    w.u8(1).u8(sizeBits | 0x08 | 0x10).u8(1).u8(1).uint(name.length, lw).bytes(name).u16(target.length).bytes(target);
  } else {
    w.u8(1).u8(sizeBits | 0x10).u8(1).uint(name.length, lw).bytes(name).u64(l.address);
  }
  return w;
}

export function decodeLink(r: ByteReader): Link | null {
  const version = r.u8();
  if (version !== 1) throw formatError('link', `version ${version}`);
  const flags = r.u8();
  const type = flags & 0x08 ? r.u8() : 0;
  if (flags & 0x04) r.skip(8);
  if (flags & 0x10) r.u8();
  const len = r.uint([1, 2, 4, 8][flags & 3]);
  const name = Buffer.from(r.bytes(len)).toString('utf8');
  if (type === 1) return { name, target: Buffer.from(r.bytes(r.u16())).toString('utf8') };
  if (type !== 0) return null; // external and user-defined links: not fur's, skipped when reopening
  return { name, address: r.u64() };
}
