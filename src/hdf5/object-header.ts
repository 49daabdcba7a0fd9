/**
 * Version 2 object headers ("OHDR"), with continuation blocks ("OCHK") when messages outgrow
 * the space reserved at creation. Every block carries a lookup3 checksum, so a header is
 * rewritten as a whole, in one write, whenever one of its messages changes.
 */
import { ByteReader, ByteWriter } from './bytes.js';
import { lookup3 } from './checksum.js';
import { formatError } from './errors.js';

export const MSG = {
  nil: 0x00, dataspace: 0x01, linkInfo: 0x02, datatype: 0x03, fillValue: 0x05, link: 0x06,
  layout: 0x08, groupInfo: 0x0a, filterPipeline: 0x0b, attribute: 0x0c, continuation: 0x10,
  attributeInfo: 0x15,
} as const;

export interface Message { type: number; body: Uint8Array }

const PREFIX = 10; // "OHDR", version, flags, 4-byte chunk-0 size
const MSG_HDR = 4; // type, size (2), flags
const CONT_MSG = MSG_HDR + 16;

/** bytes an object header needs for chunk 0 holding `msgs` exactly */
export function messagesSize(msgs: Message[]): number {
  return msgs.reduce((n, m) => n + MSG_HDR + m.body.length, 0);
}

/** total allocation for a header whose chunk 0 has room for `capacity` bytes of messages */
export function headerSize(capacity: number): number { return PREFIX + capacity + 4; }

function putMessages(w: ByteWriter, msgs: Message[]): void {
  for (const m of msgs) {
    if (m.body.length > 0xffff) throw formatError('object header', `message of ${m.body.length} bytes is too large`);
    w.u8(m.type).u16(m.body.length).u8(0).bytes(m.body);
  }
}

/** fill `n` bytes of free space: one NIL message, or a gap when too small for a message header */
function putFree(w: ByteWriter, n: number): void {
  if (n >= MSG_HDR) w.u8(MSG.nil).u16(n - MSG_HDR).u8(0).zeros(n - MSG_HDR);
  else w.zeros(n);
}

export interface EncodedHeader {
  chunk0: Uint8Array;
  /** overflow block, when the messages do not fit in chunk 0 */
  continuation?: { address: number; bytes: Uint8Array };
}

/**
 * Lay out `msgs` in a chunk 0 of `capacity` message bytes; what does not fit goes to one
 * continuation block. `prev` is the block used last time: reused when its bytes are unchanged,
 * otherwise a new block is allocated, so a reader holding the old chunk 0 never sees a
 * continuation block change under it.
 */
export function encodeHeader(
  msgs: Message[], capacity: number, alloc: (size: number) => number,
  prev?: { address: number; bytes: Uint8Array },
): EncodedHeader {
  let inline = msgs;
  let rest: Message[] = [];
  if (messagesSize(msgs) > capacity) {
    let used = 0;
    let i = 0;
    while (i < msgs.length && used + MSG_HDR + msgs[i].body.length + CONT_MSG <= capacity) {
      used += MSG_HDR + msgs[i].body.length;
      i++;
    }
    inline = msgs.slice(0, i);
    rest = msgs.slice(i);
  }
  let continuation: EncodedHeader['continuation'];
  const w = new ByteWriter(PREFIX + capacity + 4);
  w.ascii('OHDR').u8(2).u8(0x02).u32(capacity);
  putMessages(w, inline);
  if (rest.length) {
    const cw = new ByteWriter();
    cw.ascii('OCHK');
    putMessages(cw, rest);
    cw.u32(lookup3(cw.finish()));
    const bytes = cw.finish();
    const same = prev && prev.bytes.length === bytes.length && Buffer.compare(prev.bytes, bytes) === 0;
    const address = same ? prev!.address : alloc(bytes.length);
    continuation = { address, bytes };
    w.u8(MSG.continuation).u16(16).u8(0).u64(address).u64(bytes.length);
  }
  putFree(w, PREFIX + capacity - w.pos);
  w.u32(lookup3(w.finish()));
  return { chunk0: w.finish(), continuation };
}

export interface DecodedHeader {
  messages: Message[];
  capacity: number;
  continuation?: { address: number; bytes: Uint8Array };
}

function parseMessages(r: ByteReader, end: number, out: Message[], conts: { address: number; length: number }[]): void {
  while (r.pos + MSG_HDR <= end) {
    const type = r.u8();
    const size = r.u16();
    r.u8();
    const body = r.bytes(size);
    if (type === MSG.continuation) {
      const br = new ByteReader(body);
      conts.push({ address: br.u64(), length: br.u64() });
    } else if (type !== MSG.nil) out.push({ type, body: body.slice() });
  }
}

function checkSum(block: Uint8Array, what: string): void {
  const n = block.length - 4;
  const stored = new DataView(block.buffer, block.byteOffset + n, 4).getUint32(0, true);
  if (lookup3(block.subarray(0, n)) !== stored) throw formatError(what, 'checksum mismatch');
}

export async function readHeader(
  read: (offset: number, length: number) => Promise<Uint8Array>, address: number,
): Promise<DecodedHeader> {
  let head = await read(address, 512);
  if (head.length < PREFIX || String.fromCharCode(...head.subarray(0, 4)) !== 'OHDR') {
    throw formatError('object header', `no OHDR signature at ${address} (not written by fur's layout)`);
  }
  const flags = head[5];
  let pos = 6;
  if (flags & 0x20) pos += 16;
  if (flags & 0x10) pos += 4;
  const sizeWidth = [1, 2, 4, 8][flags & 3];
  const capacity = new ByteReader(head, pos).uint(sizeWidth);
  const start = pos + sizeWidth;
  const total = start + capacity + 4;
  if (head.length < total) head = await read(address, total);
  const block = head.subarray(0, total);
  checkSum(block, `object header at ${address}`);
  const messages: Message[] = [];
  const conts: { address: number; length: number }[] = [];
  parseMessages(new ByteReader(block, start), start + capacity, messages, conts);
  let continuation: DecodedHeader['continuation'];
  for (let i = 0; i < conts.length; i++) {
    const c = conts[i];
    const bytes = await read(c.address, c.length);
    if (String.fromCharCode(...bytes.subarray(0, 4)) !== 'OCHK') throw formatError('object header', `bad continuation at ${c.address}`);
    checkSum(bytes, `continuation block at ${c.address}`);
    parseMessages(new ByteReader(bytes, 4), bytes.length - 4, messages, conts);
    if (i === 0) continuation = { address: c.address, bytes: bytes.slice() };
  }
  return { messages, capacity, continuation };
}
