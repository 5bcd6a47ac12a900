// The adapter's connection to the gRPC service: one HTTP/2 connection (its streams carry the
// concurrent requests), with the service's API key sent as `authorization` metadata on every call.
import { createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { GenerationService } from '../gen/mlxserve/v1/generation_service_pb.ts';

export type GenerationClient = Client<typeof GenerationService>;

export interface ServiceConnection {
  client: GenerationClient;
  baseUrl: string;
  /** Closes the HTTP/2 connection; calls still running fail. */
  close(): void;
}

/** "host:port" (or a URL) as the base URL of the gRPC service. */
export function serviceBaseUrl(target: string): string {
  if (/^https?:\/\//.test(target)) return target.replace(/\/+$/, '');
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d+$/.test(target)) {
    throw new Error(`grpc target must be host:port (or an http:// URL), got ${JSON.stringify(target)}`);
  }
  return `http://${target}`;
}

function bearer(apiKey: string): Interceptor {
  return (next) => async (req) => {
    req.header.set('authorization', `Bearer ${apiKey}`);
    return next(req);
  };
}

export function connectToService(options: { target: string; apiKey?: string }): ServiceConnection {
  const baseUrl = serviceBaseUrl(options.target);
  // Pings keep a long-idle connection honest, so a service restarted behind it is noticed.
  const sessionManager = new Http2SessionManager(baseUrl, { pingIntervalMs: 30_000, idleConnectionTimeoutMs: 15 * 60_000 });
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager,
    interceptors: options.apiKey ? [bearer(options.apiKey)] : [],
  });
  return { client: createClient(GenerationService, transport), baseUrl, close: () => sessionManager.abort() };
}
