// GET /health: 200 when the service answers and its engine is ready, 503 otherwise (starting,
// restarting, draining, or the service cannot be reached), for load balancers and scripts that
// wait for the server to come up.
import { EngineState } from '../gen/mlxserve/v1/generation_service_pb.ts';
import type { GenerationClient } from './service-connection.ts';

/** How long /health waits for the service before calling it unreachable. */
const HEALTH_TIMEOUT_MS = 3000;

const STATE_NAMES: Record<EngineState, string> = {
  [EngineState.UNSPECIFIED]: 'unknown',
  [EngineState.STARTING]: 'starting',
  [EngineState.READY]: 'ready',
  [EngineState.RESTARTING]: 'restarting',
  [EngineState.DRAINING]: 'draining',
  [EngineState.FAILED]: 'failed',
};

export interface Health {
  status: number;
  body: { status: string; running_requests?: number; waiting_requests?: number; error?: string };
}

export async function checkHealth(client: GenerationClient): Promise<Health> {
  try {
    const s = await client.getServerStatus({}, { timeoutMs: HEALTH_TIMEOUT_MS });
    const ready = s.engineState === EngineState.READY;
    return {
      status: ready ? 200 : 503,
      body: { status: STATE_NAMES[s.engineState] ?? 'unknown', running_requests: s.runningRequests, waiting_requests: s.waitingRequests },
    };
  } catch (err) {
    return { status: 503, body: { status: 'unreachable', error: (err as Error).message } };
  }
}
