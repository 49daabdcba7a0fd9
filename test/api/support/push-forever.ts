/**
 * A program that pushes frames until it is killed: frame i named frame_<i>, every pixel a
 * function of i (test/api/capture.test.ts's frame()). Prints each progress event as a JSON line,
 * so a test can kill it after fur's own commits.
 *
 *   node push-forever.js DESTINATION
 */
import { openCapture } from '../../../src/index.js';
import { frame, SHAPE } from './frames.js';

const capture = await openCapture(process.argv[2]!, {
  dtype: 'uint16', shape: SHAPE, batch: 10, onProgress: (e) => process.stdout.write(`${JSON.stringify(e)}\n`),
});
for (let i = 0; ; i++) await capture.append(frame(i), { name: `frame_${i}` });
