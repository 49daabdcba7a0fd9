/**
 * Opaque frames: the whole file is one frame (a JPEG from an embedded camera, a vendor blob).
 * Nothing is decoded, so nothing can be lost; storage keeps the bytes as they were written.
 */
import type { DecodedFrames } from '../frame.js';

export function decodeBytes(bytes: Uint8Array): DecodedFrames {
  return { dtype: 'bytes', shape: [], count: 1, data: bytes };
}
