// Defence against HTTP/2 "rapid reset" (CVE-2023-44487) and stream floods on the gRPC port: a
// connection that opens streams, or cancels them, faster than any client of this API does is
// told GOAWAY (ENHANCE_YOUR_CALM) and closed, before its streams can keep the event loop busy
// and slow every other client down. Limits are per connection over the last second.
import http2 from 'node:http2';

export interface StreamRateLimits {
  /** Streams a connection may open per second. */
  streamsPerSecond: number;
  /** Streams a connection may cancel (RST_STREAM) per second. */
  resetsPerSecond: number;
}

export const DEFAULT_STREAM_RATE_LIMITS: StreamRateLimits = { streamsPerSecond: 1000, resetsPerSecond: 200 };

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

export function guardStreamRate(session: http2.ServerHttp2Session, limits: StreamRateLimits, onCut: (why: string) => void): void {
  const opened = new PerSecond();
  const reset = new PerSecond();
  let cut = false;
  const cutOff = (why: string) => {
    if (cut) return;
    cut = true;
    onCut(why);
    // Sends GOAWAY with this code and drops the connection's streams. Not from inside a stream's
    // event: destroying the session there trips an assertion in Node's HTTP/2 internals.
    setImmediate(() => session.destroy(undefined, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM));
  };
  session.on('stream', (stream) => {
    if (opened.add(performance.now()) > limits.streamsPerSecond) return cutOff(`more than ${limits.streamsPerSecond} streams in a second`);
    // Cancelled (RST_STREAM with CANCEL) before it ended: by the client, in a rapid reset.
    stream.once('close', () => {
      if (stream.rstCode !== http2.constants.NGHTTP2_CANCEL) return;
      if (reset.add(performance.now()) > limits.resetsPerSecond) cutOff(`more than ${limits.resetsPerSecond} stream resets in a second`);
    });
  });
}
