// ListModels and GetServerStatus: what the server serves and how busy it is.
import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import { readFileSync } from 'node:fs';
import type { EngineStats } from '../engine/request.ts';
import type { GetServerStatusResponseSchema, ListModelsResponseSchema } from '../gen/mlxserve/v1/generation_service_pb.ts';
import { toAdapterModelInfo, toModelInfo } from './event-mapping.ts';
import { toConnectError } from './request-error.ts';
import type { ServingState } from './serving-state.ts';

const SERVER_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

export function listModelsHandler(state: ServingState) {
  return function listModels(): MessageInitShape<typeof ListModelsResponseSchema> {
    try {
      const info = state.baseModel();
      const ownedBy = state.options.ownedBy;
      return {
        models: [
          toModelInfo(info, { ownedBy, loadedAt: state.loadedAt, isDefault: true }),
          ...state.engine.adapters.map((a) => toAdapterModelInfo(info, a, ownedBy)),
        ],
      };
    } catch (e) {
      throw toConnectError(e);
    }
  };
}

const NO_LOAD: EngineStats = {
  running: 0,
  waiting: 0,
  kvBytesUsed: 0,
  kvBytesAllocated: 0,
  kvBytesCapacity: 0,
  prefixCacheBytes: 0,
  prefixCacheLockedBytes: 0,
  prefixCacheHits: 0,
  prefixCacheQueries: 0,
  preemptions: 0,
  residentBytes: 0,
  lora: { running: [], waiting: [], maxLoras: 0 },
};

export function serverStatusHandler(state: ServingState) {
  return function getServerStatus(): MessageInitShape<typeof GetServerStatusResponseSchema> {
    // While the engine is not ready it has no load to report; the state says why.
    const stats = state.engineStats() ?? NO_LOAD;
    return {
      engineState: state.engineState,
      runningRequests: stats.running,
      waitingRequests: stats.waiting,
      kvCacheBytesUsed: BigInt(stats.kvBytesUsed),
      kvCacheBytesCapacity: BigInt(stats.kvBytesCapacity),
      prefixCacheBytes: BigInt(stats.prefixCacheBytes),
      prefixCacheHitTokens: BigInt(stats.prefixCacheHits),
      prefixCacheQueryTokens: BigInt(stats.prefixCacheQueries),
      prefixCacheHitRate: stats.prefixCacheQueries > 0 ? stats.prefixCacheHits / stats.prefixCacheQueries : 0,
      uptime: durationFromMs(Date.now() - state.startedAt.getTime()),
      serverVersion: SERVER_VERSION,
      prefixCacheLockedBytes: BigInt(stats.prefixCacheLockedBytes),
      engineResidentBytes: BigInt(stats.residentBytes),
      engineRestarts: state.engine.restarts,
      inFlightRequests: state.inFlight,
      kvCacheBytesAllocated: BigInt(stats.kvBytesAllocated),
    };
  };
}
