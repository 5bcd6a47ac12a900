// Checks the request messages of calls (gRPC, gRPC-Web, Connect) before connect decodes them.
// Connect ends a call whose bytes are not a valid message with INTERNAL (as grpc-go does), and one
// without its single message with UNIMPLEMENTED; both are the client's fault, and monitoring reads
// those codes as the server's. Here such a call ends with INVALID_ARGUMENT instead, naming what
// was wrong. Connect's JSON messages are checked for valid UTF-8 only (connect would decode bad
// bytes to U+FFFD and serve the call; its JSON parser answers INVALID_ARGUMENT for the rest).
// Messages pass through unchanged, each once it is complete (a streaming call's messages are not
// held back). Compressed messages and ones over the size limit are left to connect (it
// decompresses them, or refuses them with RESOURCE_EXHAUSTED).
import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { Code, ConnectError, type ConnectRouter } from '@connectrpc/connect';
import type { UniversalHandler, UniversalServerRequest } from '@connectrpc/connect/protocol';

interface Framing {
  /** Enveloped messages (streams and gRPC), or the whole body as one (Connect unary). */
  framing: 'enveloped' | 'whole';
  format: 'binary' | 'json';
}

/** How a content type frames its messages; undefined for those left to connect (gRPC-Web text). */
function framingOf(contentType: string | null): Framing | undefined {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (
    [
      'application/grpc',
      'application/grpc+proto',
      'application/grpc-web',
      'application/grpc-web+proto',
      'application/connect+proto',
    ].includes(type)
  )
    return { framing: 'enveloped', format: 'binary' };
  if (type === 'application/proto') return { framing: 'whole', format: 'binary' };
  if (type === 'application/grpc+json' || type === 'application/grpc-web+json' || type === 'application/connect+json') {
    return { framing: 'enveloped', format: 'json' };
  }
  if (type === 'application/json') return { framing: 'whole', format: 'json' };
  return undefined;
}

/** Whether the client declared a compression for its messages (then they are not checked here). */
function declaresCompression(header: Headers): boolean {
  const encoding = header.get('grpc-encoding') ?? header.get('connect-content-encoding') ?? header.get('content-encoding');
  return encoding !== null && encoding !== 'identity';
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function checkMessage(schema: DescMessage, bytes: Uint8Array, format: Framing['format']): void {
  if (format === 'json') {
    try {
      strictUtf8.decode(bytes);
    } catch {
      throw invalid(`the request's JSON is not valid UTF-8`);
    }
    return;
  }
  try {
    fromBinary(schema, bytes);
  } catch (e) {
    throw invalid(`the request is not a valid ${schema.typeName} message: ${(e as Error).message}`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

interface CheckOptions {
  schema: DescMessage;
  /** Unary and server-streaming calls carry exactly one message. */
  single: boolean;
  maxBytes: number;
  compressed: boolean;
  format: Framing['format'];
}

/** Enveloped messages (a flags byte and a 4-byte length before each), each checked once complete. */
async function* checkedEnvelopes(body: AsyncIterable<Uint8Array>, o: CheckOptions): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array = new Uint8Array(0);
  let messages = 0;
  for await (const chunk of body) {
    pending = concat(pending, chunk);
    while (pending.length >= 5) {
      const flags = pending[0];
      const length = new DataView(pending.buffer, pending.byteOffset + 1, 4).getUint32(0);
      if (length > o.maxBytes) {
        // Connect refuses it (RESOURCE_EXHAUSTED) without reading it; nothing left to check.
        yield pending;
        yield* body;
        return;
      }
      if (pending.length < 5 + length) break;
      const payload = pending.subarray(5, 5 + length);
      if (flags & 0x01) {
        if (!o.compressed) throw invalid('the request has a compressed message but declares no compression (grpc-encoding)');
      } else {
        checkMessage(o.schema, payload, o.format);
      }
      messages++;
      if (o.single && messages > 1) throw invalid('the request has more than one message; this method takes one');
      yield pending.subarray(0, 5 + length);
      pending = pending.subarray(5 + length);
    }
  }
  if (pending.length > 0) throw invalid(`the request ends inside a message (${pending.length} bytes of an incomplete envelope)`);
  if (o.single && messages === 0) throw invalid('the request has no message; this method takes one');
}

/** A whole body that is one message (Connect unary). */
async function* checkedWhole(body: AsyncIterable<Uint8Array>, o: CheckOptions): AsyncGenerator<Uint8Array> {
  let all: Uint8Array = new Uint8Array(0);
  for await (const chunk of body) {
    all = concat(all, chunk);
    if (all.length > o.maxBytes) {
      yield all;
      yield* body;
      return;
    }
  }
  if (!o.compressed) checkMessage(o.schema, all, o.format);
  yield all;
}

function isByteStream(body: UniversalServerRequest['body']): body is AsyncIterable<Uint8Array> {
  return typeof body === 'object' && body !== null && Symbol.asyncIterator in body;
}

function checking(handler: UniversalHandler, maxBytes: number): UniversalHandler {
  const kind = handler.method.methodKind;
  const checked = (req: UniversalServerRequest) => {
    const framing = framingOf(req.header.get('content-type'));
    if (framing === undefined || !isByteStream(req.body) || req.method !== 'POST') return handler(req);
    const options: CheckOptions = {
      schema: handler.method.input,
      single: kind === 'unary' || kind === 'server_streaming',
      maxBytes,
      compressed: declaresCompression(req.header),
      format: framing.format,
    };
    const body = framing.framing === 'enveloped' ? checkedEnvelopes(req.body, options) : checkedWhole(req.body, options);
    return handler({ ...req, body });
  };
  return Object.assign(checked, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

/** Puts the check in front of every handler the router has (call after registering the services). */
export function checkRequestMessages(router: ConnectRouter, maxBytes: number): void {
  router.handlers.forEach((handler, i) => {
    router.handlers[i] = checking(handler, maxBytes);
  });
}
