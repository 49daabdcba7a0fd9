/**
 * Headerless binary files: the layout cannot be discovered, so the user declares dtype and
 * frame shape. A file may hold several frames back to back (detectors that dump a burst).
 */
import { FurError } from '../../errors.js';
import { describeLayout, frameBytes, itemsize, swapBytes, type DecodedFrames, type NumericDtype } from '../frame.js';

export interface RawLayout {
  dtype: NumericDtype;
  shape: number[];
  /** Byte order of the file; frames are converted to little-endian. Default 'little'. */
  byteOrder?: 'little' | 'big';
}

export function decodeRaw(bytes: Uint8Array, file: string, layout: RawLayout): DecodedFrames {
  const size = frameBytes(layout.dtype, layout.shape)!;
  if (size === 0) {
    throw new FurError('empty-frame', `${file}: declared frame shape ${layout.shape.join('x')} has no elements; check --shape`,
      { file, shape: layout.shape });
  }
  if (bytes.length % size !== 0) {
    throw new FurError('raw-size',
      `${file}: ${bytes.length} bytes is not a whole number of ${describeLayout(layout.dtype, layout.shape)} frames ` +
      `(${size} bytes each); check --dtype/--shape or whether the file is still being written`,
      { file, fileBytes: bytes.length, frameBytes: size, dtype: layout.dtype, shape: layout.shape });
  }
  let data = bytes;
  if (layout.byteOrder === 'big' && itemsize(layout.dtype) > 1) {
    data = bytes.slice();
    swapBytes(data, itemsize(layout.dtype));
  }
  return { dtype: layout.dtype, shape: [...layout.shape], count: bytes.length / size, data };
}
