// GET /version: the server's version, in vLLM's shape ({"version": "…"}), for clients and
// operators checking what they talk to.
import { readFileSync } from 'node:fs';

export const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export function versionBody(): { version: string } {
  return { version: PACKAGE_VERSION };
}
