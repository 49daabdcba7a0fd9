import { FurError } from '../errors.js';

/** A file that is not HDF5, not fur's, or uses a feature fur's reader does not handle. */
export function formatError(what: string, detail: string): FurError<'hdf5-format'> {
  return new FurError('hdf5-format', `${what}: ${detail}`, { what, detail });
}

/** Misuse of the writer API (wrong sizes, unknown dataset, closed file). */
export function usageError(what: string, detail: string): FurError<'hdf5-usage'> {
  return new FurError('hdf5-usage', `${what}: ${detail}`, { what, detail });
}
