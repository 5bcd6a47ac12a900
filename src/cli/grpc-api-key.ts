// API-key check for the gRPC service: calls must carry `authorization: Bearer <key>` metadata,
// except health checks and reflection, which load balancers, grpc-health-probe and grpcurl use
// without credentials (they reveal no data).
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { keyMatches } from '../adapter-openai/api-key.ts';

const OPEN_SERVICES = new Set(['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection']);

export function requireApiKey(apiKey: string): Interceptor {
  return (next) => async (req) => {
    if (OPEN_SERVICES.has(req.service.typeName)) return next(req);
    const header = req.header.get('authorization');
    const match = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!match) throw new ConnectError('missing API key: send metadata "authorization: Bearer <key>"', Code.Unauthenticated);
    if (!keyMatches(match[1], apiKey)) throw new ConnectError('incorrect API key', Code.Unauthenticated);
    return next(req);
  };
}
