/**
 * fur as a library. Store frames — pushed from memory, or a folder's files — as HDF5 at a remote
 * destination (SFTP, FTPS, S3, a mounted folder), with durable commits, reconnection and resume.
 *
 *   import { openCapture } from 'fur';
 *   const capture = await openCapture('sftp://me@archive/run42.h5', { dtype: 'uint16', shape: [2048, 2048] });
 *   await capture.append(frame, { name: 'frame_000001' });
 *   const summary = await capture.close();
 */
export { openCapture, Capture, type CaptureOptions, type FrameOptions, type FrameData } from './api/capture.js';
export { upload, watch, verify, type VerifyReport } from './api/commands.js';
export type { ConnectionOptions, StoreOptions, FolderOptions, WatchOptions, Summary, ProgressEvent } from './api/options.js';
export { FurError, isFurError } from './errors.js';
export type { Dtype, NumericDtype } from './source/frame.js';
export type { FieldValue, FrameValue, InstrumentField } from './pipeline/instrument.js';
export { FUR_VERSION as version } from './version.js';
