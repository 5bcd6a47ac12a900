// The gRPC server: mlxserve.v1.GenerationService, grpc.health.v1.Health and server reflection
// (v1, v1alpha) on one plaintext port, speaking gRPC, gRPC-Web and Connect (HTTP/2 and, for
// Connect and gRPC-Web, HTTP/1.1).
import { Code, ConnectError, type ConnectRouter, type Interceptor } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { setMaxListeners } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { Registry } from 'prom-client';
import type { EngineClient } from '../engine/engine-client.ts';
import type { TokenizerPool } from '../text/tokenizer-pool.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { createLimitedHttpServer, DEFAULT_HTTP_LIMITS, type HttpLimits } from '../util/http-limits.ts';
import type { CorsPolicy } from './cors-policy.ts';
import { registerEngineMetrics } from './engine-metrics.ts';
import { GenerationService, generationService } from './generation-service.ts';
import { Health, HealthStatus } from './health.ts';
import { createProtocolRouter } from './protocol-router.ts';
import { DEFAULT_RESETS_PER_SECOND, guardStreamResets } from './stream-rate-guard.ts';
import { registerReflection } from './reflection.ts';
import { checkRequestMessages } from './request-message-check.ts';
import { RequestMetrics } from './request-metrics.ts';
import { PLAIN_SERVED_MODEL, type ServedModel } from './model-info.ts';
import { ServingState } from './serving-state.ts';

export const DEFAULT_GRPC_PORT = 50051;
/** gRPC's customary limit on a received message (grpc-go's and grpc-java's default). */
export const DEFAULT_GRPC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Request bytes read and thrown away after a call was answered, before the stream is reset. */
const DISCARD_BYTES = 64 * 1024 * 1024;

export interface GrpcServerOptions {
  /**
   * The engine to serve. It may still be starting: health reports NOT_SERVING and generation
   * requests get UNAVAILABLE until it is ready (and again while it restarts).
   */
  engine: EngineClient;
  /**
   * The model's tokenizer, as it loads (the server holds it: generation, Tokenize and Detokenize
   * use it). Until it resolves the service is not serving.
   */
  tokenizer: Promise<TokenizerPool>;
  /** Address to listen on. Default '127.0.0.1'; '0.0.0.0' or '::' for every interface. */
  host?: string;
  /** Port to listen on; 0 picks a free one (see GrpcServer.port). Default 50051. */
  port?: number;
  /** ModelInfo.owned_by in ListModels. Default 'mlx-batch-server'. */
  ownedBy?: string;
  /** The model's aliases and sampling defaults (--served-model-name, generation_config.json). Default: none. */
  served?: ServedModel;
  /**
   * Longest deadline a client may set, in ms; a longer one is refused with INVALID_ARGUMENT.
   * Default: no limit.
   */
  maxTimeoutMs?: number;
  /** Connect interceptors run around every call of every service (e.g. an API-key check). */
  interceptors?: Interceptor[];
  /**
   * Largest request message accepted, in bytes; a larger one ends its call with
   * RESOURCE_EXHAUSTED before it is decoded. Default 4 MiB.
   */
  maxMessageBytes?: number;
  /** Where requests are logged (JSON lines). Default: nowhere. */
  logger?: Logger;
  /**
   * Timeouts of the HTTP/1.1 calls (Connect, gRPC-Web) and the cap on connections to the port.
   * Default DEFAULT_HTTP_LIMITS.
   */
  httpLimits?: HttpLimits;
  /** Log each request's prompt. Default false. */
  logPrompts?: boolean;
  /** Prometheus registry the service's metrics join (the process's one). Default: a registry of its own. */
  metricsRegistry?: Registry;
  /** Web pages (origins) allowed to call the service from a browser. Default: none. */
  cors?: CorsPolicy;
}

export interface GrpcServer {
  /** The port the server listens on (the one chosen when `port` was 0). */
  readonly port: number;
  readonly host: string;
  /**
   * Draining: new generation requests get UNAVAILABLE and health reports NOT_SERVING, while
   * running requests continue. Set it first in a graceful shutdown, then `drain()`, then `close()`.
   */
  draining: boolean;
  /**
   * Leaving the balancer's pool, before draining: health reports NOT_SERVING while new requests
   * are still taken, so a balancer's checks take the server out before it refuses anything.
   */
  leaving: boolean;
  /** Generations in flight (all RPCs). */
  readonly inFlight: number;
  /** The registry holding the service's metrics (see request-metrics.ts, engine-metrics.ts). */
  readonly metrics: Registry;
  /**
   * Sets `draining` and resolves when no generation is in flight (true) or after timeoutMs
   * (false). Default: wait as long as it takes.
   */
  drain(timeoutMs?: number): Promise<boolean>;
  /**
   * Stops the server: refuses new connections, cancels the calls still open (their requests end
   * in the engine) and closes every connection. Does not stop the engine.
   */
  close(): Promise<void>;
}

/** Starts serving; resolves once the port is listening. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const host = options.host ?? '127.0.0.1';
  const metrics = options.metricsRegistry ?? new Registry();
  const log = options.logger ?? silentLogger;
  const state = new ServingState(options.engine, {
    ownedBy: options.ownedBy ?? 'mlx-batch-server',
    served: options.served ?? PLAIN_SERVED_MODEL,
    logger: log,
    logPrompts: options.logPrompts ?? false,
    requestMetrics: new RequestMetrics(metrics),
  });
  registerEngineMetrics(metrics, state);
  options.tokenizer.then(
    (pool) => (state.text = pool),
    // The caller learns of a tokenizer that cannot load from the promise it passed in.
    () => {},
  );
  const health = new HealthStatus([GenerationService.typeName], state.serving);
  state.on('change', () => health.setServing(state.serving));

  const shutdown = new AbortController();
  // Every running call listens on it (connect links each call's signal to it until the call ends):
  // more than Node's default of 10 is normal, not a leak, and the warning would break the JSON logs.
  setMaxListeners(0, shutdown.signal);
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_GRPC_MAX_MESSAGE_BYTES;
  const connectHandler = connectNodeAdapter({
    routes: (router: ConnectRouter) => {
      router.service(GenerationService, generationService(state));
      router.service(Health, health.impl());
      registerReflection(router, [GenerationService, Health]);
      checkRequestMessages(router, maxMessageBytes);
    },
    shutdownSignal: shutdown.signal,
    // As the protobuf JSON mapping requires by default, and as binary gRPC and REST behave: a
    // field the message does not have is an error, not silently dropped.
    jsonOptions: { ignoreUnknownFields: false },
    maxTimeoutMs: options.maxTimeoutMs,
    interceptors: options.interceptors,
    readMaxBytes: maxMessageBytes,
  });
  const handler = options.cors ? options.cors.wrap(connectHandler) : connectHandler;

  // A client gets at most this many streams at once (it may queue more); the bidi Generate stream
  // multiplexes any number of requests on one.
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 256 } }, (req, res) => {
    // A call answered before its request was read to the end (refused for size, say): the rest is
    // read and thrown away, else the unread data holds the stream open, the client waits for flow
    // control forever, and the connection's window shrinks with every such call. A client that
    // keeps sending far beyond that is cut off.
    req.stream.once('finish', () => {
      if (req.complete) return;
      let discarded = 0;
      // From the HTTP/2 stream itself: the request object connect read from is paused for good.
      const stream = req.stream;
      stream.removeAllListeners('data');
      stream.on('data', (chunk: Buffer) => {
        discarded += chunk.length;
        if (discarded > DISCARD_BYTES) stream.close(http2.constants.NGHTTP2_CANCEL);
      });
      stream.resume();
    });
    handler(req, res);
  });
  const limits = options.httpLimits ?? DEFAULT_HTTP_LIMITS;
  const h1 = createLimitedHttpServer(limits, handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (session) => {
    sessions.add(session);
    guardStreamResets(session, DEFAULT_RESETS_PER_SECOND, (why) => log.warn({ why }, 'HTTP/2 connection cut off'));
    session.once('close', () => sessions.delete(session));
  });
  // A broken connection concerns only its own calls.
  h2.on('sessionError', () => {});
  h1.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
  // h1 never listens (the router hands it its connections), so Node does not track them and its
  // closeAllConnections() finds none: a browser's kept-alive connection would hold close() open
  // until its idle timeout.
  const h1Sockets = new Set<Socket>();
  h1.on('connection', (socket: Socket) => {
    h1Sockets.add(socket);
    socket.once('close', () => h1Sockets.delete(socket));
  });

  const router = createProtocolRouter(h2, h1, limits.headersTimeoutMs);
  // Every connection's socket, for close(): an HTTP/2 session whose client stopped reading keeps
  // writes pending, and then its destroy() waits for them forever, holding close() open with it.
  const sockets = new Set<Socket>();
  router.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  router.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    router.once('error', reject);
    router.listen(options.port ?? DEFAULT_GRPC_PORT, host, () => {
      router.off('error', reject);
      resolve();
    });
  });
  const port = (router.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    port,
    host,
    get draining() {
      return state.draining;
    },
    set draining(on: boolean) {
      state.draining = on;
    },
    get leaving() {
      return state.leaving;
    },
    set leaving(on: boolean) {
      state.leaving = on;
    },
    get inFlight() {
      return state.inFlight;
    },
    metrics,
    drain(timeoutMs?: number) {
      state.draining = true;
      return state.whenIdle(timeoutMs);
    },
    close() {
      closing ??= (async () => {
        state.draining = true;
        state.detach();
        const closed = new Promise<void>((resolve) => router.close(() => resolve()));
        shutdown.abort(new ConnectError('the server is shutting down', Code.Unavailable));
        for (const session of sessions) session.close();
        for (const socket of h1Sockets) socket.destroy();
        // Calls end at once on the shutdown signal; a session that lingers is cut, its socket too.
        const timer = setTimeout(() => {
          for (const session of sessions) session.destroy();
          for (const socket of sockets) socket.destroy();
        }, 2000);
        await closed;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
