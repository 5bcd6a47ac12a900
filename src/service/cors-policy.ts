// Cross-origin access to the gRPC port from web pages (the playground on the REST port is another
// origin: another port). Connect and gRPC-Web calls from a browser need a preflight (OPTIONS) and
// Access-Control-* headers on every answer; only the listed origins get them, so a page elsewhere
// cannot use the service (and the API key a user typed into the playground) from the user's
// browser. `*` in the list allows every origin.
import { cors } from '@connectrpc/connect';
import type http from 'node:http';
import type http2 from 'node:http2';

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;
type Handler = (req: Request, res: Response) => void;

const ALLOW_METHODS = [...cors.allowedMethods].join(', ');
const ALLOW_HEADERS = [...cors.allowedHeaders, 'authorization'].join(', ');
const EXPOSE_HEADERS = [...cors.exposedHeaders].join(', ');
/** Browsers cap it lower (Chromium: 2 h); the preflight is cached this long. */
const PREFLIGHT_MAX_AGE_S = 7200;

export class CorsPolicy {
  private readonly origins = new Set<string>();
  private anyOrigin = false;

  /** `origins`: exact origins such as http://localhost:8080 (scheme, host, port), or '*'. */
  constructor(origins: Iterable<string> = []) {
    this.allow(origins);
  }

  /** Allows more origins (the REST port's, once it listens: it may be chosen at random). */
  allow(origins: Iterable<string>): void {
    for (const o of origins) {
      const origin = o.trim().replace(/\/+$/, '').toLowerCase();
      if (origin === '*') this.anyOrigin = true;
      else if (origin !== '') this.origins.add(origin);
    }
  }

  allows(origin: string): boolean {
    return this.anyOrigin || this.origins.has(origin.toLowerCase());
  }

  /** `next` with CORS: preflights answered here, allowed origins' calls marked as such. */
  wrap(next: Handler): Handler {
    return (req, res) => {
      const origin = req.headers.origin;
      // Not from a browser page (grpcurl, generated clients, curl): nothing to add.
      if (typeof origin !== 'string') return next(req, res);
      const allowed = this.allows(origin);
      const isPreflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
      if (allowed) {
        res.setHeader('access-control-allow-origin', this.anyOrigin ? '*' : origin);
        res.setHeader('access-control-expose-headers', EXPOSE_HEADERS);
        if (!this.anyOrigin) res.setHeader('vary', 'origin');
      }
      if (!isPreflight) return next(req, res);
      // The HTTP/1.1 and HTTP/2 responses share these members but not their overloads.
      const out = res as { statusCode: number; setHeader(name: string, value: string): unknown; end(body?: string): unknown };
      if (allowed) {
        out.setHeader('access-control-allow-methods', ALLOW_METHODS);
        out.setHeader('access-control-allow-headers', ALLOW_HEADERS);
        out.setHeader('access-control-max-age', String(PREFLIGHT_MAX_AGE_S));
        out.statusCode = 204;
        out.end();
      } else {
        // Without the allow headers the browser refuses the call; the status says why to a human.
        out.statusCode = 403;
        out.setHeader('content-type', 'text/plain; charset=utf-8');
        out.end(`origin ${origin} is not allowed; add it with --allowed-origins\n`);
      }
    };
  }
}

/** The origins a page on `host:port` may come from: the host itself and its loopback names when it is local or a wildcard. */
export function pageOrigins(host: string, port: number): string[] {
  const local = ['localhost', '127.0.0.1', '[::1]'];
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  const named = host.includes(':') ? `[${host}]` : host;
  const hosts = wildcard || local.includes(named) ? local : [named];
  return hosts.map((h) => `http://${h}:${port}`);
}
