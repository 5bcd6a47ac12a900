// A graceful shutdown, as a load balancer expects on SIGTERM: first leave the balancer's pool
// (health turns NOT_SERVING on gRPC and 503 on REST) while still serving, for the shutdown delay,
// so the balancer's checks notice before anything is refused; then stop taking work (new requests
// get UNAVAILABLE / 503) and let the requests in progress finish, for at most the drain timeout;
// whatever still runs after it is cancelled (its clients get an error, not a cut connection). Then
// the servers close and the engine stops.
import { setTimeout as sleep } from 'node:timers/promises';
import type { OpenAIAdapter } from '../adapter-openai/adapter-server.ts';
import type { EngineClient } from '../engine/engine-client.ts';
import type { Logger } from '../log/logger.ts';
import type { GrpcServer } from '../service/grpc-server.ts';

/** How long cancelled REST requests get to send their error before their connections are closed. */
const CANCEL_GRACE_MS = 1000;

export interface ServerParts {
  adapter: OpenAIAdapter;
  grpc: GrpcServer;
  engine: EngineClient;
}

export interface ShutdownTimes {
  /** How long health reports not-ready while requests are still taken (0: refuse at once). */
  shutdownDelayMs: number;
  /** How long running requests may then finish before they are cancelled. */
  drainTimeoutMs: number;
}

/** Reports not-ready on every server given, while they still serve, for the shutdown delay. */
export async function leavePool(servers: { leaving: boolean }[], shutdownDelayMs: number, log: Logger): Promise<void> {
  if (shutdownDelayMs <= 0) return;
  for (const server of servers) server.leaving = true;
  log.info({ shutdownDelayMs }, 'leaving: health reports not ready; requests are still served until the shutdown delay ends');
  await sleep(shutdownDelayMs);
}

export async function gracefulShutdown(parts: ServerParts, times: ShutdownTimes, log: Logger): Promise<void> {
  const { adapter, grpc, engine } = parts;
  const { shutdownDelayMs, drainTimeoutMs } = times;
  // A server that does not serve yet (its model still loading) is in no balancer's pool to leave.
  if (engine.state === 'ready') await leavePool([adapter, grpc], shutdownDelayMs, log);
  const started = performance.now();
  adapter.draining = true;
  grpc.draining = true;
  log.info({ inFlight: grpc.inFlight, drainTimeoutMs }, 'draining: new requests are refused; waiting for the running ones');
  // The service's generations and the REST answers built on them (their last chunks are written
  // after the generation ends) both have to finish.
  const [grpcIdle, restIdle] = await Promise.all([grpc.drain(drainTimeoutMs), adapter.drain(drainTimeoutMs)]);
  if (grpcIdle && restIdle) {
    log.info({ drainMs: Math.round(performance.now() - started) }, 'drained: every request finished');
  } else {
    log.warn(
      { inFlight: grpc.inFlight, restInFlight: adapter.inFlight, drainTimeoutMs },
      'drain timeout: cancelling the requests still running',
    );
  }
  // Closing the gRPC server cancels its calls; REST requests on them end with an error event.
  await grpc.close();
  await adapter.drain(CANCEL_GRACE_MS);
  await adapter.close();
  await engine.stop();
  log.info('stopped');
}
