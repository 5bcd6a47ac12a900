// The OpenAPI 3.1 document GET /openapi.json serves, built from the operation list and the request
// body schemas the readers use, so it cannot describe fields the server does not read.
import { PACKAGE_VERSION } from '../version-endpoint.ts';
import { API_OPERATIONS, type ApiOperation } from './api-operations.ts';

const ERROR_RESPONSE = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        message: { type: 'string' },
        type: { type: 'string' },
        param: { type: ['string', 'null'], description: 'The request field at fault, as the client spelled it.' },
        code: { type: ['string', 'null'] },
      },
      required: ['message', 'type', 'param', 'code'],
    },
  },
  required: ['error'],
};

const DESCRIPTION = [
  'An OpenAI-compatible REST API (with vLLM’s extensions) in front of a gRPC inference service.',
  'The `/v1` prefix is optional on the API routes.',
  'Unknown request fields are accepted and ignored (logged, and counted in `mlxserve:ignored_request_fields_total`);',
  'the server started with `--strict-fields` refuses them with 400. Fields listed as "Not supported" are refused',
  'with 400 naming the parameter, unless their value asks for nothing.',
].join(' ');

function operation(op: ApiOperation): Record<string, unknown> {
  const errorAnswer = {
    description: 'An error.',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } },
  };
  return {
    operationId: op.operationId,
    summary: op.summary,
    tags: [op.tag],
    ...(op.pathParams
      ? {
          parameters: Object.entries(op.pathParams).map(([name, description]) => ({
            name,
            in: 'path',
            required: true,
            description,
            schema: { type: 'string' },
          })),
        }
      : {}),
    ...(op.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: `#/components/schemas/${op.body.title}` } } },
          },
        }
      : {}),
    responses: {
      '200': {
        description: op.answer.description,
        content: Object.fromEntries(Object.entries(op.answer.content).map(([type, schema]) => [type, { schema }])),
      },
      ...(op.body || op.guarded ? { '4XX': errorAnswer, '5XX': errorAnswer } : {}),
    },
    security: op.guarded ? [{ apiKey: [] }, {}] : [],
  };
}

let built: Record<string, unknown> | undefined;

export function openApiDocument(): Record<string, unknown> {
  if (built) return built;
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas: Record<string, unknown> = { ErrorResponse: ERROR_RESPONSE };
  for (const op of API_OPERATIONS) {
    paths[op.path] ??= {};
    paths[op.path][op.method] = operation(op);
    if (op.body) schemas[op.body.title] = op.body;
  }
  built = {
    openapi: '3.1.0',
    info: { title: 'mlx-batch-server', version: PACKAGE_VERSION, description: DESCRIPTION },
    paths,
    components: {
      schemas,
      // Only when the server runs with --api-key; `{}` in each operation's security says it may be off.
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'The key given by --api-key.' } },
    },
  };
  return built;
}
