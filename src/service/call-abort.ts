// How a call ends when the server aborted it. The call's signal aborts with the reason connect
// gives it: DEADLINE_EXCEEDED when the client's grpc-timeout expires, UNAVAILABLE when the server
// shuts down (the drain timeout passed), CANCELLED when the client went away. The generations of
// the call then end as 'cancelled', but the call itself must not end with OK.
import { ConnectError } from '@connectrpc/connect';

/** The status a call whose signal aborted must end with; undefined while the signal holds. */
export function abortStatus(signal: AbortSignal): ConnectError | undefined {
  return signal.aborted ? ConnectError.from(signal.reason) : undefined;
}
