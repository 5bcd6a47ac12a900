// The gRPC server: mlxserve.v1.GenerationService, grpc.health.v1.Health and server reflection
// (v1, v1alpha) on one plaintext port, speaking gRPC, gRPC-Web and Connect (HTTP/2 and, for
// Connect and gRPC-Web, HTTP/1.1).
import { Code, ConnectError, type ConnectRouter, type Interceptor } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { EngineClient } from '../engine/engine-client.ts';
import { GenerationService, generationService } from './generation-service.ts';
import { Health, HealthStatus } from './health.ts';
import { createProtocolRouter } from './protocol-router.ts';
import { registerReflection } from './reflection.ts';
import { ServingState } from './serving-state.ts';

export const DEFAULT_GRPC_PORT = 50051;

export interface GrpcServerOptions {
  /**
   * The engine to serve. It may still be starting: health reports NOT_SERVING and generation
   * requests get UNAVAILABLE until it is ready (and again while it restarts).
   */
  engine: EngineClient;
  /** Address to listen on. Default '127.0.0.1'; '0.0.0.0' or '::' for every interface. */
  host?: string;
  /** Port to listen on; 0 picks a free one (see GrpcServer.port). Default 50051. */
  port?: number;
  /** ModelInfo.owned_by in ListModels. Default 'mlx-batch-server'. */
  ownedBy?: string;
  /**
   * Longest deadline a client may set, in ms; a longer one is refused with INVALID_ARGUMENT.
   * Default: no limit.
   */
  maxTimeoutMs?: number;
  /** Connect interceptors run around every call of every service (e.g. an API-key check). */
  interceptors?: Interceptor[];
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
  /** Generations in flight (all RPCs). */
  readonly inFlight: number;
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
  const state = new ServingState(options.engine, { ownedBy: options.ownedBy ?? 'mlx-batch-server' });
  const health = new HealthStatus([GenerationService.typeName], state.serving);
  state.on('change', () => health.setServing(state.serving));

  const shutdown = new AbortController();
  const handler = connectNodeAdapter({
    routes: (router: ConnectRouter) => {
      router.service(GenerationService, generationService(state));
      router.service(Health, health.impl());
      registerReflection(router, [GenerationService, Health]);
    },
    shutdownSignal: shutdown.signal,
    maxTimeoutMs: options.maxTimeoutMs,
    interceptors: options.interceptors,
  });

  const h2 = http2.createServer(handler);
  const h1 = http.createServer(handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  // A broken connection concerns only its own calls.
  h2.on('sessionError', () => {});
  h1.on('clientError', (_err: Error, socket: Socket) => socket.destroy());

  const router = createProtocolRouter(h2, h1);
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
    get inFlight() {
      return state.inFlight;
    },
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
        h1.closeAllConnections();
        // Calls end at once on the shutdown signal; a session that lingers is cut.
        const timer = setTimeout(() => sessions.forEach((s) => s.destroy()), 2000);
        await closed;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
