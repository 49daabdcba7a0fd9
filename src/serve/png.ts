/**
 * PNG encoding of 8-bit grey or RGB pixels: the format every browser shows, made with node's own
 * zlib (deflate and CRC-32), so a thumbnail costs no dependency.
 */
import { crc32, deflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface Pixels {
  width: number;
  height: number;
  /** 1: grey, 3: RGB */
  channels: 1 | 3;
  /** row-major, `channels` bytes a pixel */
  data: Uint8Array;
}

export function encodePng(p: Pixels): Buffer {
  const stride = p.width * p.channels;
  if (p.data.length !== stride * p.height) throw new RangeError(`PNG: ${p.data.length} bytes for ${p.width}x${p.height}x${p.channels}`);
  // each row starts with its filter type: 0 (none); thumbnails are small and made once a second
  const raw = Buffer.alloc((stride + 1) * p.height);
  for (let y = 0; y < p.height; y++) raw.set(p.data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(p.width, 0);
  header.writeUInt32BE(p.height, 4);
  header[8] = 8; // bits per sample
  header[9] = p.channels === 1 ? 0 : 2; // colour type: grey, truecolour
  return Buffer.concat([SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(raw, { level: 3 })), chunk('IEND', Buffer.alloc(0))]);
}

function chunk(type: string, body: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'latin1');
  out.set(body, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}
