// Defence against HTTP/2 "rapid reset" (CVE-2023-44487) on the gRPC port: a connection that
// cancels streams faster than any client of this API does is told GOAWAY (ENHANCE_YOUR_CALM) and
// closed, before the streams it keeps opening can occupy the event loop and slow every other
// client down. Streams that run to their end are not limited: a busy client (or the REST adapter,
// which multiplexes every REST request on one connection) may open many a second.
import http2 from 'node:http2';

/** Streams a connection may cancel (RST_STREAM with CANCEL) in a second. */
export const DEFAULT_RESETS_PER_SECOND = 200;

/** Counts events in a one-second window that moves in whole seconds (cheap, and enough here). */
class PerSecond {
  private windowStart = 0;
  private count = 0;

  /** Counts one event; returns the count in the current second. */
  add(now: number): number {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.count = 0;
    }
    return ++this.count;
  }
}

export function guardStreamResets(session: http2.ServerHttp2Session, resetsPerSecond: number, onCut: (why: string) => void): void {
  const resets = new PerSecond();
  let cut = false;
  session.on('stream', (stream) => {
    stream.once('close', () => {
      if (cut || stream.rstCode !== http2.constants.NGHTTP2_CANCEL) return;
      if (resets.add(performance.now()) <= resetsPerSecond) return;
      cut = true;
      onCut(`more than ${resetsPerSecond} streams cancelled in a second`);
      // Sends GOAWAY with this code and drops the connection's streams. Not from inside a
      // stream's event: destroying the session there trips an assertion in Node's HTTP/2 code.
      setImmediate(() => session.destroy(undefined, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM));
    });
  });
}
