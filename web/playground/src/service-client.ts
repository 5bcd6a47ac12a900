// The page's client of the gRPC service: the generated GenerationService over the Connect
// protocol (HTTP/1.1 fetch, binary messages), on the port the server named in index.html. The
// API key is read at every call, so a key typed in later applies to the next call.
import { type Client, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import { GenerationService } from '../../../src/gen/mlxserve/v1/generation_service_pb.ts';

export type GenerationClient = Client<typeof GenerationService>;

/** The service's base URL: the host the server configured, else the page's own host. */
export function serviceUrl(): string {
  const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content;
  const port = meta('mlx-grpc-port') ?? '50051';
  const configured = meta('mlx-grpc-host');
  const host = configured === undefined ? location.hostname : configured.includes(':') ? `[${configured}]` : configured;
  return `${location.protocol}//${host}:${port}`;
}

export function createServiceClient(baseUrl: string, apiKey: () => string): GenerationClient {
  const authorize: Interceptor = (next) => (req) => {
    const key = apiKey();
    if (key !== '') req.header.set('authorization', `Bearer ${key}`);
    return next(req);
  };
  return createClient(GenerationService, createConnectTransport({ baseUrl, useBinaryFormat: true, interceptors: [authorize] }));
}
