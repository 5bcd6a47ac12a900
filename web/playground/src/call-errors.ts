// What a failed call means to the person at the page, from its status code: the key, the load,
// the model still loading, or the service out of reach.
import { Code, ConnectError } from '@connectrpc/connect';

export interface CallProblem {
  /** Short class for styling and tests: unauthenticated, busy, loading, unavailable, unreachable, stopped, error. */
  kind: string;
  message: string;
}

export function describeCallError(err: unknown, serviceUrl: string): CallProblem {
  const e = ConnectError.from(err);
  const detail = e.rawMessage;
  switch (e.code) {
    case Code.Canceled:
      return { kind: 'stopped', message: 'Stopped.' };
    case Code.Unauthenticated:
      return {
        kind: 'unauthenticated',
        message: `401 Unauthenticated: the server requires an API key (${detail}). Enter it in the API key field at the top.`,
      };
    case Code.ResourceExhausted:
      return { kind: 'busy', message: `429 / RESOURCE_EXHAUSTED: the server is at capacity (${detail}). Retry in a moment.` };
    case Code.Unavailable:
      if (/starting|not loaded/i.test(detail)) return { kind: 'loading', message: 'The model is still loading; retry in a moment.' };
      if (/fetch|network/i.test(detail)) return unreachable(serviceUrl);
      return { kind: 'unavailable', message: `503 / UNAVAILABLE: ${detail}` };
    default:
      if (e.code === Code.Unknown && /fetch|network/i.test(detail)) return unreachable(serviceUrl);
      return { kind: 'error', message: `${Code[e.code]}: ${detail}` };
  }
}

function unreachable(serviceUrl: string): CallProblem {
  return {
    kind: 'unreachable',
    message: `Cannot reach the gRPC service at ${serviceUrl}: is the server running, and is this page's origin allowed (--allowed-origins)?`,
  };
}
