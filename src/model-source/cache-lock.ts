// Serialises fetches of the same cache entry across processes, so two servers started at once
// download a model once instead of twice. Correctness does not rest on the lock (files are
// written under temporary names and renamed when complete and verified); it saves bandwidth.
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';

// proper-lockfile refreshes the lock's mtime every `update` ms while held; a lock not
// refreshed for `stale` ms belongs to a dead process and is taken over.
const STALE_MS = 20_000;
const UPDATE_MS = 5_000;
// Waiting for another process's download: poll every second or two, for up to about an hour.
const RETRIES = { retries: 2_000, factor: 1.5, minTimeout: 200, maxTimeout: 2_000 };

export async function withCacheLock<T>(target: string, work: () => Promise<T>): Promise<T> {
  await mkdir(dirname(target), { recursive: true });
  let compromised: Error | undefined;
  const release = await lockfile.lock(target, {
    realpath: false,
    lockfilePath: `${target}.lock`,
    stale: STALE_MS,
    update: UPDATE_MS,
    retries: RETRIES,
    // The default throws from a timer, which would crash the process; remember it instead.
    onCompromised: (err) => {
      compromised = err;
    },
  });
  try {
    return await work();
  } finally {
    if (!compromised) await release().catch(() => undefined);
  }
}
