/**
 * What an instrument says about itself, as NeXus fields: a detector's configuration (an EIGER
 * stream's header) written into /entry/instrument — `detector/distance` with its `units`,
 * `beam/incident_wavelength`, and the values NeXus has no name for in a collection, as the
 * instrument named them — and values each frame carries (an EIGER frame's start and stop times)
 * as per-frame datasets beside the frames. In the flat layout the same fields go under
 * /instrument, without NeXus classes.
 */
import type { Dataset, H5File } from '../hdf5/index.js';
import { INSTRUMENT } from './nexus.js';

export type FieldValue = string | number | boolean | number[];

/** One value, at a path under the instrument group ('detector/distance'). */
export interface InstrumentField {
  path: string;
  value: FieldValue;
  units?: string;
  /** a NeXus float (NX_FLOAT): stored as float64 even when the value is whole */
  float?: boolean;
}

/** A value every frame carries (in its attrs under `key`), stored per frame as float64. */
export interface FrameValue {
  key: string;
  /** the per-frame dataset beside the frames */
  name: string;
  units?: string;
  long_name?: string;
  /** a soft link to it under the instrument group, by its NeXus name ('detector/start_time') */
  link?: string;
}

/** NeXus classes of the groups fields may go in (a group not listed is an NXcollection) */
const CLASSES: Record<string, string> = { detector: 'NXdetector', beam: 'NXbeam' };

export function instrumentBase(nexus: boolean): string {
  return nexus ? INSTRUMENT : '/instrument';
}

/** Write the fields (compact datasets: each in its own header), groups made where missing. */
export function writeInstrument(file: H5File, nexus: boolean, fields: readonly InstrumentField[]): void {
  const base = instrumentBase(nexus);
  for (const f of fields) {
    const path = `${base}/${f.path}`;
    group(file, nexus, base, f.path.split('/').slice(0, -1));
    const value = typeof f.value === 'boolean' ? { dtype: 'uint8' as const, data: new Uint8Array([f.value ? 1 : 0]) }
      : typeof f.value === 'number' && (f.float || !Number.isSafeInteger(f.value)) ? { dtype: 'float64' as const, data: new Uint8Array(Float64Array.of(f.value).buffer) }
        : f.value;
    file.writeCompact(path, value);
    if (f.units !== undefined) file.setAttr(path, 'units', f.units);
  }
}

/** The per-frame value datasets of a new file, and their links under the instrument group. */
export function createFrameValues(file: H5File, nexus: boolean, beside: (name: string) => string, values: readonly FrameValue[], create: (path: string) => Dataset): Dataset[] {
  const base = instrumentBase(nexus);
  return values.map((v) => {
    const ds = create(beside(v.name));
    if (v.long_name) file.setAttr(ds.path, 'long_name', v.long_name);
    if (v.units) file.setAttr(ds.path, 'units', v.units);
    if (v.link) {
      group(file, nexus, base, v.link.split('/').slice(0, -1));
      file.softLink(`${base}/${v.link}`, ds.path);
    }
    return ds;
  });
}

/** Each frame's value of `key` in its attrs, NaN where it has none. */
export function frameValue(attrs: Record<string, unknown> | undefined, key: string): number {
  const v = attrs?.[key];
  return typeof v === 'number' ? v : NaN;
}

function group(file: H5File, nexus: boolean, base: string, parts: string[]): void {
  let at = base;
  for (const [i, name] of ['', ...parts].entries()) {
    if (i > 0) at = `${at}/${name}`;
    if (file.has(at)) continue;
    file.createGroup(at);
    if (nexus) file.setAttr(at, 'NX_class', i === 0 ? 'NXinstrument' : CLASSES[name] ?? 'NXcollection');
  }
}
