/**
 * Dimension scales, as libhdf5's H5DS writes them: a scale is a 1-D dataset marked
 * CLASS=DIMENSION_SCALE (and NAME); a dataset names the scale of each of its axes in
 * DIMENSION_LIST (a sequence of object references per axis); each scale lists, in
 * REFERENCE_LIST, the datasets and axes it is attached to. netCDF-C, h5netcdf (xarray) and h5py's
 * `dims` read axes' names from them; without scales those readers invent "phony" dimensions or
 * refuse the dataset.
 */
import type { Datatype } from './datatype.js';
import type { H5File } from './file.js';
import { fixedString } from './values.js';

/**
 * The NAME netCDF gives a scale that is only a dimension, not a variable (an axis with no
 * coordinate values): readers of netCDF show the dimension and hide the dataset.
 */
export function dimensionOnlyName(length: number): string {
  return `This is a netCDF dimension but not a netCDF variable.${String(length).padStart(10)}`;
}

/** REFERENCE_LIST's element: the struct H5DS uses ({object reference; int} on a 64-bit machine: 16 bytes) */
const REFERENCE_ENTRY: Datatype = {
  class: 'compound', size: 16, members: [
    { name: 'dataset', offset: 0, type: { class: 'reference', size: 8 } },
    { name: 'dimension', offset: 8, type: { class: 'int', size: 4, signed: true, bigEndian: false } },
  ],
};

export interface ScaleSpec {
  /** the scale dataset (1-D) */
  path: string;
  /** its NAME: the dataset's own name for a coordinate, dimensionOnlyName() for a bare dimension */
  name: string;
}

/**
 * Mark `scales` as dimension scales and attach them: `datasets` maps a dataset path to the scale
 * path of each of its axes. Every path must exist (references hold header addresses). Done once,
 * when the datasets are made: the attributes name objects, not lengths, so nothing changes as
 * the datasets grow.
 */
export function attachScales(file: H5File, scales: ScaleSpec[], datasets: Map<string, string[]>): void {
  const users = new Map<string, { dataset: string; dim: number }[]>(scales.map((s) => [s.path, []]));
  for (const [dataset, axes] of datasets) {
    axes.forEach((scale, dim) => {
      const list = users.get(scale);
      if (!list) throw new Error(`${dataset}: axis ${dim} names ${scale}, which is not among the scales`);
      list.push({ dataset, dim });
    });
    file.setAttr(dataset, 'DIMENSION_LIST', { references: axes.map((s) => [s]) });
  }
  for (const s of scales) {
    file.setAttr(s.path, 'CLASS', fixedString('DIMENSION_SCALE'));
    file.setAttr(s.path, 'NAME', fixedString(s.name));
    const list = users.get(s.path)!;
    if (list.length === 0) continue;
    const data = new Uint8Array(16 * list.length);
    const v = new DataView(data.buffer);
    list.forEach(({ dataset, dim }, i) => {
      const address = file.addressOf(dataset);
      v.setUint32(16 * i, address % 0x100000000, true);
      v.setUint32(16 * i + 4, Math.floor(address / 0x100000000), true);
      v.setInt32(16 * i + 8, dim, true);
    });
    file.setAttr(s.path, 'REFERENCE_LIST', { dtype: REFERENCE_ENTRY, shape: [list.length], data });
  }
}
