// A graceful shutdown, as a load balancer expects on SIGTERM: first stop taking work (health turns
// NOT_SERVING on gRPC and 503 on REST, new requests get UNAVAILABLE / 503), then let the requests
// in progress finish, for at most the drain timeout; whatever still runs after it is cancelled
// (its clients get an error, not a cut connection). Then the servers close and the engine stops.
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

export async function gracefulShutdown(parts: ServerParts, drainTimeoutMs: number, log: Logger): Promise<void> {
  const { adapter, grpc, engine } = parts;
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
