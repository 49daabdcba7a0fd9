"""The deterministic frame content shared with TS (test/support/pattern.ts):
byte j of row i is (i*31 + j*7 + seed) & 0xFF."""
import numpy as np


def pattern_rows(start, count, row_bytes, seed=0):
    """Rows start..start+count-1 as a (count, row_bytes) uint8 array."""
    i = np.arange(start, start + count, dtype=np.int64)[:, None]
    j = np.arange(row_bytes, dtype=np.int64)[None, :]
    return ((i * 31 + j * 7 + seed) & 0xFF).astype(np.uint8)


def pattern_row(i, row_bytes, seed=0):
    return pattern_rows(i, 1, row_bytes, seed)[0]
