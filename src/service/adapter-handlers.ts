// LoadAdapter and UnloadAdapter: LoRA adapters loaded and unloaded while the server runs. The
// engine reads the files (and says which file and field is wrong); the service checks the name
// against the base model's names, which would otherwise mean two things.
import type { MessageInitShape } from '@bufbuild/protobuf';
import { resolve } from 'node:path';
import { AdapterError } from '../engine/engine-client.ts';
import type { AdapterErrorCode } from '../engine/engine-protocol.ts';
import { ErrorCode } from '../gen/mlxserve/v1/generation_pb.ts';
import type {
  LoadAdapterRequest,
  LoadAdapterResponseSchema,
  UnloadAdapterRequest,
  UnloadAdapterResponseSchema,
} from '../gen/mlxserve/v1/generation_service_pb.ts';
import { checkAdapterName, shown } from './adapter-selection.ts';
import { toAdapterModelInfo } from './event-mapping.ts';
import { invalidArgument, invalidField, RequestError, toConnectError } from './request-error.ts';
import type { ServingState } from './serving-state.ts';

const ADAPTER_CODES: Record<AdapterErrorCode, ErrorCode> = {
  invalid_argument: ErrorCode.INVALID_ARGUMENT,
  not_found: ErrorCode.NOT_FOUND,
  already_exists: ErrorCode.ALREADY_EXISTS,
  internal: ErrorCode.INTERNAL,
};

/** The engine's refusal as the call's error; a bad adapter file is the fault of the request's `path`. */
function fromAdapterError(e: unknown): unknown {
  if (!(e instanceof AdapterError)) return e;
  if (e.code === 'invalid_argument') return invalidArgument('path', e.message);
  return new RequestError(ADAPTER_CODES[e.code] ?? ErrorCode.INTERNAL, e.message);
}

function alreadyLoaded(name: string, path: string): RequestError {
  return new RequestError(ErrorCode.ALREADY_EXISTS, `adapter "${name}" is already loaded (from ${path}); unload it first to replace it`);
}

export function loadAdapterHandler(state: ServingState) {
  return async function loadAdapter(req: LoadAdapterRequest): Promise<MessageInitShape<typeof LoadAdapterResponseSchema>> {
    try {
      const base = state.baseModel();
      checkAdapterName(req.name, base);
      if (req.path.length === 0) throw invalidField('path', ' must not be empty');
      const loaded = state.engine.adapters.find((a) => a.name === req.name);
      if (loaded) throw alreadyLoaded(req.name, loaded.path);
      // The engine process shares the server's working directory, but the path it reports should
      // not depend on that.
      const adapter = await state.engine.loadAdapter(req.name, resolve(req.path)).catch((e) => {
        throw fromAdapterError(e);
      });
      state.options.logger.info(
        { adapter: adapter.name, path: adapter.path, format: adapter.format, rank: adapter.rank, modules: adapter.modules },
        'LoRA adapter loaded',
      );
      return { model: toAdapterModelInfo(base, adapter, state.options.ownedBy) };
    } catch (e) {
      throw toConnectError(e);
    }
  };
}

export function unloadAdapterHandler(state: ServingState) {
  return async function unloadAdapter(req: UnloadAdapterRequest): Promise<MessageInitShape<typeof UnloadAdapterResponseSchema>> {
    try {
      if (req.name.length === 0) throw invalidField('name', ' must not be empty');
      const base = state.baseModel();
      if (!state.engine.adapters.some((a) => a.name === req.name)) {
        const served = state.engine.adapters.map((a) => `"${a.name}"`).join(', ') || 'none';
        const what = req.name === base.id || base.aliases.includes(req.name) ? 'is the base model, not an adapter' : 'not found';
        throw new RequestError(ErrorCode.NOT_FOUND, `adapter "${shown(req.name)}" ${what}; adapters served: ${served}`);
      }
      await state.engine.unloadAdapter(req.name).catch((e) => {
        throw fromAdapterError(e);
      });
      state.options.logger.info({ adapter: req.name }, 'LoRA adapter unloaded');
      return {};
    } catch (e) {
      throw toConnectError(e);
    }
  };
}
