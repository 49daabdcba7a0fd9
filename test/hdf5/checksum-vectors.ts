/** Checksum values computed by libhdf5 1.10.8 itself (ctypes, test/interop/support/hdf5-checksum.py). */

/** bytes (i*7+3) & 0xff, the input the libhdf5 values below were computed over */
export const seq = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

/** libhdf5 1.10.8 H5_checksum_lookup3(seq(n), n, 0) */
export const LIBHDF5_LOOKUP3: Record<number, number> = {
  0: 0xdeadbeef, 1: 0xbb60a9ce, 2: 0xb97dd76b, 3: 0x147ae71f, 4: 0xdd608fec, 5: 0x1694ce8d, 11: 0x5be3b601,
  12: 0xe96b1a98, 13: 0xd3177396, 23: 0x0a8e79fb, 24: 0xb448afab, 25: 0x13438157, 36: 0x23e17057,
  37: 0x7af75402, 44: 0x4283dbb6, 100: 0xffc9edae,
};
/** libhdf5 1.10.8 H5_checksum_fletcher32(seq(n), n) */
export const LIBHDF5_FLETCHER32: Record<number, number> = {
  0: 0x00000000, 1: 0x03000300, 2: 0x030a030a, 3: 0x1714140a, 4: 0x172c1422, 5: 0x4a4e3322, 719: 0xacc6d0fe,
  720: 0xad72d1aa, 721: 0x321e84ab, 722: 0x32d88565, 723: 0x793e4666, 1000: 0x1dd116c5, 1001: 0x8f9671c5,
};
