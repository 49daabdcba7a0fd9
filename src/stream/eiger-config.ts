/**
 * An EIGER stream's detector configuration (the JSON after `dheader-1.0` with header_detail basic
 * or all) as NeXus fields: the values NXdetector and NXbeam (as NXmx uses them) name, with the
 * units the detector gives them in (lengths in metres, times in seconds, energies in eV, the
 * wavelength in ångström, the beam centre in pixels); every other value under
 * detector/detector_specific, by the name the detector gave it, so nothing it said is dropped.
 * Per frame, `dconfig-1.0` gives start_time, stop_time and real_time (nanoseconds).
 */
import type { FieldValue, FrameValue, InstrumentField } from '../pipeline/instrument.js';

/** EIGER name → NeXus path under /entry/instrument, units, and whether NeXus holds it as a float */
const NEXUS: Record<string, { path: string; units?: string; float?: boolean }> = {
  beam_center_x: { path: 'detector/beam_center_x', units: 'pixel', float: true },
  beam_center_y: { path: 'detector/beam_center_y', units: 'pixel', float: true },
  bit_depth_readout: { path: 'detector/bit_depth_readout' },
  count_time: { path: 'detector/count_time', units: 's', float: true },
  countrate_correction_applied: { path: 'detector/countrate_correction_applied' },
  countrate_correction_count_cutoff: { path: 'detector/saturation_value' },
  description: { path: 'detector/description' },
  detector_distance: { path: 'detector/distance', units: 'm', float: true },
  detector_number: { path: 'detector/serial_number' },
  detector_readout_time: { path: 'detector/detector_readout_time', units: 's', float: true },
  flatfield_correction_applied: { path: 'detector/flatfield_applied' },
  frame_time: { path: 'detector/frame_time', units: 's', float: true },
  pixel_mask_applied: { path: 'detector/pixel_mask_applied' },
  sensor_material: { path: 'detector/sensor_material' },
  sensor_thickness: { path: 'detector/sensor_thickness', units: 'm', float: true },
  threshold_energy: { path: 'detector/threshold_energy', units: 'eV', float: true },
  virtual_pixel_correction_applied: { path: 'detector/virtual_pixel_interpolation_applied' },
  x_pixel_size: { path: 'detector/x_pixel_size', units: 'm', float: true },
  y_pixel_size: { path: 'detector/y_pixel_size', units: 'm', float: true },
  wavelength: { path: 'beam/incident_wavelength', units: 'angstrom', float: true },
  photon_energy: { path: 'beam/incident_energy', units: 'eV', float: true },
};

/** the goniometer's angles in the configuration (omega_start, phi_increment, …): degrees */
const ANGLE = /^(chi|kappa|omega|phi|two_theta)_(start|increment|end)$/;

/** The configuration's values as fields under /entry/instrument. */
export function eigerInstrument(config: Record<string, unknown>): InstrumentField[] {
  return Object.entries(config).map(([key, raw]): InstrumentField => {
    const value = fieldValue(raw);
    const known = NEXUS[key];
    if (known && (typeof value !== 'string' || typeof raw === 'string')) return { ...known, value };
    // a name HDF5 can hold: '/' separates groups, and '.' and '..' are not names
    const name = key.replace(/\//g, '_').replace(/^(\.\.?)?$/, '_');
    return { path: `detector/detector_specific/${name}`, value, ...(ANGLE.test(key) ? { units: 'deg' } : {}) };
  });
}

/** A JSON value as a field holds it: strings, numbers, true/false and lists of numbers as they are; anything else as its JSON text. */
function fieldValue(v: unknown): FieldValue {
  if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) return v as number[];
  return JSON.stringify(v) ?? String(v);
}

/** dconfig-1.0's times of each frame, stored per frame and named as NXdetector names them */
export const EIGER_FRAME_VALUES: readonly FrameValue[] = [
  { key: 'start_time', name: 'frame_start_time', units: 'ns', long_name: 'start of the exposure, from the start of the series (dconfig-1.0)', link: 'detector/start_time' },
  { key: 'stop_time', name: 'frame_stop_time', units: 'ns', long_name: 'end of the exposure, from the start of the series (dconfig-1.0)', link: 'detector/stop_time' },
  { key: 'real_time', name: 'frame_real_time', units: 'ns', long_name: 'exposure time of the frame (dconfig-1.0)', link: 'detector/real_time' },
];
