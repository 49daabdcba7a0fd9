/**
 * Every version and delete marker under a prefix, page by page: what fur deletes by id so that a
 * versioned bucket keeps nothing of its records (an unversioned write's id, "null", is named by
 * no id). Throws where the store does not answer the listing; callers decide what that means.
 */
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import type { S3Destination } from './s3.js';

export interface ObjectVersion { key: string; versionId?: string; latest: boolean }

export async function listVersions(dest: S3Destination, prefix: string): Promise<ObjectVersion[]> {
  const out: ObjectVersion[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const r = await dest.client.send(new ListObjectVersionsCommand({ Bucket: dest.bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    for (const v of [...(r.Versions ?? []), ...(r.DeleteMarkers ?? [])]) {
      out.push({ key: v.Key!, versionId: v.VersionId === 'null' ? undefined : v.VersionId, latest: v.IsLatest === true });
    }
    keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
    versionMarker = r.IsTruncated ? r.NextVersionIdMarker : undefined;
  } while (keyMarker);
  return out;
}
