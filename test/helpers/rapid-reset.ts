// An HTTP/2 "rapid reset" burst: one connection opens streams and cancels each at once, as fast as
// it can, until the server cuts it off or `streams` were sent. Used by the test and the benchmark.
import http2 from 'node:http2';

export interface RapidResetResult {
  /** Streams the client opened (and cancelled). */
  opened: number;
  /** Streams the server says it processed before its GOAWAY; undefined if it sent none. */
  processedByServer: number | undefined;
  /** The GOAWAY's error code, if one came. */
  goawayCode: number | undefined;
  burstMs: number;
}

export async function rapidReset(
  baseUrl: string,
  streams: number,
  path = '/mlxserve.v1.GenerationService/Complete',
): Promise<RapidResetResult> {
  const session = http2.connect(baseUrl);
  session.on('error', () => {});
  let goawayCode: number | undefined;
  let processedByServer: number | undefined;
  // Client streams have odd ids 1, 3, 5, ...: the last one processed tells how many were.
  session.on('goaway', (code, lastStreamId) => {
    goawayCode = code;
    processedByServer = (lastStreamId + 1) / 2;
  });
  const closed = new Promise((resolve) => session.once('close', resolve));
  await new Promise((resolve) => session.once('connect', resolve));
  const started = performance.now();
  let opened = 0;
  for (; opened < streams && !session.destroyed && !session.closed; opened++) {
    try {
      const s = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc' });
      s.on('error', () => {});
      s.close(http2.constants.NGHTTP2_CANCEL);
    } catch {
      break;
    }
    if (opened % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  const burstMs = performance.now() - started;
  // Give the server time to answer; a connection it let live is closed here.
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000))]);
  session.destroy();
  return { opened, processedByServer, goawayCode, burstMs };
}
