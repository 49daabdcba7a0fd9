export { H5File, LIVE_TRIM_GRACE_MS, type DatasetOptions, type FileOptions } from './file.js';
export { Dataset } from './dataset.js';
export { dtypeName, type Datatype, type DtypeSpec } from './datatype.js';
export type { Filter } from './messages/filter-pipeline.js';
export { MemorySink, type Sink, type RandomAccess } from './sink.js';
export { defaultChunks } from './chunking.js';
export type { AttrValue } from './values.js';
export { fixedString } from './values.js';
export { attachScales, dimensionOnlyName, type ScaleSpec } from './dimension-scales.js';
