/**
 * `--serve` for upload and watch: the live view started before the run, its address printed,
 * its secrets (the values it must never show) gathered from the environment.
 */
import type { PipelineOptions } from '../pipeline/options.js';
import { parseDestinationUrl } from '../transport/url.js';
import type { ServeAddress } from './address.js';
import { LiveView } from './live.js';
import { secretValues } from './redact.js';

export interface ServeFlags { passwordEnv?: string; endpoint?: string; json?: boolean }

export async function startLiveView(at: ServeAddress, command: 'watch' | 'upload', destUrl: string, o: PipelineOptions, f: ServeFlags): Promise<LiveView> {
  const filters = [
    ...(o.shuffle ? ['shuffle'] : []),
    ...(o.gzipLevel !== undefined ? [`gzip:${o.gzipLevel}`] : []),
    ...(o.checksum ?? o.method === 'append' ? ['Fletcher-32'] : []),
  ];
  const view = await LiveView.start(at, {
    command, method: o.method, dataset: o.dataset, filters, deleteSource: o.deleteSource,
    destination: parseDestinationUrl(destUrl).display, ...(f.endpoint ? { endpoint: f.endpoint } : {}),
  }, secretValues(process.env, [f.passwordEnv]));
  if (f.json) process.stdout.write(JSON.stringify({ type: 'serve', url: view.url, time: new Date().toISOString() }) + '\n');
  else process.stderr.write(`fur: live view at ${view.url}${at.loopback ? '' : ' (the token in it is needed to see the page)'}\n`);
  return view;
}
