// One plaintext port for HTTP/2 and HTTP/1.1. gRPC needs HTTP/2 without TLS (h2c, "prior
// knowledge"), where there is no ALPN to tell the protocols apart, so each connection is routed by
// its first bytes: the HTTP/2 client preface, or anything else for HTTP/1.1 (Connect and gRPC-Web
// from browsers and curl).
import type http from 'node:http';
import type http2 from 'node:http2';
import net from 'node:net';

/** The start of the HTTP/2 connection preface; no HTTP/1.1 request line starts with it. */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

/** `firstBytesTimeoutMs`: a connection that says nothing for this long is closed. */
export function createProtocolRouter(h2: http2.Http2Server, h1: http.Server, firstBytesTimeoutMs: number): net.Server {
  return net.createServer((socket) => {
    let head = Buffer.alloc(0);
    const onReadable = () => {
      for (let chunk: Buffer | null; (chunk = socket.read()) !== null; ) head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, HTTP2_PREFACE.length);
      const mayBeHttp2 = head.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
      if (mayBeHttp2 && head.length < HTTP2_PREFACE.length) return; // too few bytes to tell yet
      socket.off('readable', onReadable);
      socket.setTimeout(0);
      socket.off('timeout', onTimeout);
      // Hand the bytes back: both servers read them from the socket's buffer first.
      socket.unshift(head);
      (mayBeHttp2 ? h2 : h1).emit('connection', socket);
    };
    const onTimeout = () => socket.destroy();
    socket.on('readable', onReadable);
    socket.setTimeout(firstBytesTimeoutMs, onTimeout);
    socket.on('error', () => socket.destroy());
  });
}
