/**
 * A compact dataset: a small value (a start time, a scalar setting) whose elements live in its
 * own object header, in the layout message. Changing it rewrites that header and nothing else,
 * so a value that changes at every commit (an end time) is published the way extents are: a
 * reader sees the old header or the new one, never half a value.
 */
import { encodeDatatype, type Datatype } from './datatype.js';
import { usageError } from './errors.js';
import type { Attribute } from './messages/attribute.js';
import { encodeDataspace } from './messages/dataspace.js';
import { encodeFillValue } from './messages/fill-value.js';
import { encodeLayout } from './messages/layout.js';
import { MSG, type Message } from './object-header.js';

/** the largest value kept in a header: a header message holds at most 64 KiB */
export const COMPACT_MAX_BYTES = 32 << 10;

export class CompactDataset {
  header = { address: 0, capacity: 0, continuation: undefined as { address: number; bytes: Uint8Array } | undefined, isNew: true, dirty: true };
  attrs: Attribute[] = [];

  constructor(readonly path: string, public type: Datatype, public shape: number[], public data: Uint8Array) {
    CompactDataset.check(path, type, shape, data);
  }

  /** Replace the value; published by the next commit. */
  set(type: Datatype, shape: number[], data: Uint8Array): void {
    CompactDataset.check(this.path, type, shape, data);
    this.type = type;
    this.shape = shape;
    this.data = data;
    this.header.dirty = true;
  }

  private static check(path: string, type: Datatype, shape: number[], data: Uint8Array): void {
    if (type.class === 'vlen-str' || type.class === 'vlen-bytes' || type.class === 'vlen-ref') throw usageError(path, 'a compact dataset holds fixed-size elements only');
    // libhdf5 refuses a compact dataset whose bytes differ from its extent
    if (data.length !== shape.reduce((a, b) => a * b, 1) * type.size) throw usageError(path, `${data.length} bytes for shape [${shape}] of ${type.size}-byte elements`);
    if (data.length > COMPACT_MAX_BYTES) throw usageError(path, `a compact dataset holds at most ${COMPACT_MAX_BYTES} bytes`);
  }

  messages(): Message[] {
    return [
      { type: MSG.dataspace, body: encodeDataspace({ dims: this.shape }).finish() },
      { type: MSG.datatype, body: encodeDatatype(this.type).finish() },
      // compact storage is allocated when the dataset is made
      { type: MSG.fillValue, body: encodeFillValue({ alloc: 'early' }).finish() },
      { type: MSG.layout, body: encodeLayout({ class: 'compact', data: this.data }).finish() },
    ];
  }
}
