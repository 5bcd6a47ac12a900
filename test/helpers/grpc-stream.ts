// Helpers for reading gRPC streams in tests.
import { type Code, ConnectError } from '@connectrpc/connect';

/** Reads a gRPC stream to its end; returns the status code it ended with ('ok' when it ended cleanly). */
export async function endOf(call: AsyncIterable<unknown>): Promise<Code | 'ok'> {
  try {
    for await (const _ of call);
    return 'ok';
  } catch (e) {
    return ConnectError.from(e).code;
  }
}
