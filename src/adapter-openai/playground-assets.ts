// The web playground's files, as the UI build wrote them (scripts/build-ui.mjs → dist/playground),
// served from memory on the REST port: index.html at `/`, revalidated on every load, and the
// bundles under /assets/ by content-hashed names, cached for good. Nothing is fetched from
// elsewhere, so the playground works offline. index.html learns where the gRPC service is from a
// meta tag filled in here: the page calls the service directly from the browser.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the UI build writes (from the package root; this file is two levels down in src/ and dist/). */
export const PLAYGROUND_DIR = fileURLToPath(new URL('../../dist/playground/', import.meta.url));

export interface PlaygroundOptions {
  /** The gRPC service's port, which the page calls. */
  grpcPort: number;
  /** Its host, when it is not the one the page was loaded from. */
  grpcHost?: string;
  /** Where the built files are. Default PLAYGROUND_DIR. */
  dir?: string;
}

interface Asset {
  body: Buffer;
  headers: Record<string, string>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Where index.html takes the page's configuration. */
const CONFIG_PLACEHOLDER = '<!--playground-config-->';

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

export class PlaygroundAssets {
  private constructor(private readonly files: ReadonlyMap<string, Asset>) {}

  /** The built playground, or undefined when it has not been built. */
  static load(options: PlaygroundOptions): PlaygroundAssets | undefined {
    const dir = options.dir ?? PLAYGROUND_DIR;
    const indexPath = join(dir, 'index.html');
    if (!existsSync(indexPath)) return undefined;
    const config = [`<meta name="mlx-grpc-port" content="${options.grpcPort}">`];
    if (options.grpcHost !== undefined) config.push(`<meta name="mlx-grpc-host" content="${escapeAttribute(options.grpcHost)}">`);
    const index = readFileSync(indexPath, 'utf8').replace(CONFIG_PLACEHOLDER, config.join('\n    '));
    const files = new Map<string, Asset>();
    // no-cache: revalidated each load, so a rebuilt server's new bundle names are picked up at once.
    const indexAsset = { body: Buffer.from(index), headers: { 'content-type': CONTENT_TYPES['.html'], 'cache-control': 'no-cache' } };
    files.set('/', indexAsset);
    files.set('/index.html', indexAsset);
    const assetsDir = join(dir, 'assets');
    for (const name of existsSync(assetsDir) ? readdirSync(assetsDir) : []) {
      const type = CONTENT_TYPES[extname(name)];
      if (type === undefined) continue;
      files.set(`/assets/${name}`, {
        body: readFileSync(join(assetsDir, name)),
        headers: { 'content-type': type, 'cache-control': IMMUTABLE },
      });
    }
    return new PlaygroundAssets(files);
  }

  /** Answers a GET or HEAD for one of the files; false when `path` is none of them. */
  answer(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const asset = this.files.get(path);
    if (asset === undefined) return false;
    res.writeHead(200, { ...asset.headers, 'content-length': String(asset.body.length), 'x-content-type-options': 'nosniff' });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  }
}

const LOCAL_OR_ANY = new Set(['0.0.0.0', '::', '', '127.0.0.1', 'localhost', '::1']);

/**
 * The gRPC host the page must name: none (the page's own host) when the service listens where
 * the page was loaded from, on every interface or on this machine as the REST port does.
 */
export function playgroundGrpcHost(grpcHost: string, restHost: string): string | undefined {
  if (grpcHost === restHost || LOCAL_OR_ANY.has(grpcHost)) return undefined;
  return grpcHost;
}
