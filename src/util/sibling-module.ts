// The path of a module next to the calling one, for starting it in a worker or child process:
// `.ts` while the sources run under a TypeScript loader (tests, scripts), `.js` once compiled.
import { fileURLToPath } from 'node:url';

export function siblingModule(callerUrl: string, name: string): string {
  const extension = callerUrl.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`./${name}${extension}`, callerUrl));
}
