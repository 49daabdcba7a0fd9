/**
 * Attribute Info message (0x0015), version 0. With version 2 object headers libhdf5 takes the
 * number of attributes from this message, not from the attribute messages it finds: without it,
 * HDF5 1.10 counts none (h5py's len(attrs) is 0, H5Oget_info reports 0), and h5repack, h5copy
 * and h5diff, which walk attributes by that count, drop or miss every one. fur keeps all
 * attributes in the header ("compact" storage), so the message names no heap and no index.
 */
import { ByteWriter, UNDEF_ADDR } from '../bytes.js';

export function encodeAttributeInfo(w = new ByteWriter()): ByteWriter {
  // flags 0: creation order neither tracked nor indexed; fractal heap and name index undefined
  return w.u8(0).u8(0).u64(UNDEF_ADDR).u64(UNDEF_ADDR);
}
