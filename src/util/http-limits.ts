// Limits on the clients of an HTTP/1.1 server, so that slow or silent ones cannot hold its
// connections: request headers and the whole request (a slow body) must arrive in time, a
// connection that sends no request is closed, and the number of open connections is capped.
// Responses are never timed: a generation may stream for minutes.
import http from 'node:http';
import type net from 'node:net';

export interface HttpLimits {
  /** A request's headers must arrive within this (slowloris). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this; then 408. */
  requestTimeoutMs: number;
  /** A connection with no request in progress is closed after this long. */
  idleTimeoutMs: number;
  /** Open connections per port; more are closed at once. */
  maxConnections: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 65_000,
  maxConnections: 1024,
};

/** How often Node checks the header and request deadlines (its default, 30 s, would let them run late). */
const CHECK_INTERVAL_MS = 250;

/** An HTTP/1.1 server that enforces `limits`. */
export function createLimitedHttpServer(limits: HttpLimits, listener: http.RequestListener): http.Server {
  const server = http.createServer({ connectionsCheckingInterval: CHECK_INTERVAL_MS }, listener);
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  // Between requests of a kept-alive connection, Node's own timer.
  server.keepAliveTimeout = limits.idleTimeoutMs;
  server.maxConnections = limits.maxConnections;
  // Before its first request Node times nothing: a connection that never speaks is closed after
  // the header timeout. A request in progress (or a long streamed response) is not timed.
  server.on('connection', (socket: net.Socket) => socket.setTimeout(limits.headersTimeoutMs));
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.socket.setTimeout(0);
    timeRequestBody(req, res, limits.requestTimeoutMs);
  });
  return server;
}

/**
 * 408 for a request whose body has not arrived within `timeoutMs`. Node does this itself only for
 * a server that listens on its own port; the gRPC port's HTTP/1.1 server is handed its
 * connections by the protocol router, so the deadline is kept here for both.
 */
function timeRequestBody(req: http.IncomingMessage, res: http.ServerResponse, timeoutMs: number): void {
  if (req.complete) return;
  const timer = setTimeout(() => {
    if (req.complete) return;
    if (!res.headersSent) res.writeHead(408, { connection: 'close', 'content-type': 'text/plain' }).end('request timeout\n');
    req.socket.destroySoon();
  }, timeoutMs);
  timer.unref();
  const clear = () => clearTimeout(timer);
  req.once('end', clear);
  req.once('close', clear);
}
