/**
 * Where the NeXus layout puts things, and which attributes fur's layouts own (the user's
 * --attr and --metadata may add attributes anywhere, but not replace these).
 */
export const ENTRY = '/entry';
export const NXDATA = '/entry/data';
/** the frames dataset of a NeXus file (the signal of its NXdata) */
export const FRAMES = '/entry/data/data';
export const INSTRUMENT = '/entry/instrument';
export const DETECTOR = '/entry/instrument/detector';

/** attributes fur sets on these objects */
const OWNED: Record<string, readonly string[]> = {
  '/': ['NX_class', 'default', 'creator'],
  [ENTRY]: ['NX_class', 'default'],
  [INSTRUMENT]: ['NX_class'],
  [DETECTOR]: ['NX_class'],
  [NXDATA]: ['NX_class', 'signal', 'axes', 'frame_indices'],
};

/** attributes with a meaning to HDF5's own conventions (dimension scales, images) or to fur, wherever they are */
const EVERYWHERE = /^(CLASS|NAME|DIMENSION_LIST|REFERENCE_LIST|DIMENSION_LABELS|IMAGE_\w+|INTERLACE_MODE|interpretation|fur_\w+)$/;

export function ownedAttribute(path: string, name: string): boolean {
  return EVERYWHERE.test(name) || (OWNED[path]?.includes(name) ?? false);
}
