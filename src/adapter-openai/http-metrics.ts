// GET /metrics, and the adapter's own metric: HTTP requests by handler, method and status (the
// name and labels of prometheus-fastapi-instrumentator, which vLLM's server exposes). The
// registry is the process's one, so in the full server /metrics also shows the service's and
// the engine's metrics (src/service/request-metrics.ts, engine-metrics.ts).
import type { ServerResponse } from 'node:http';
import { Counter, type Registry } from 'prom-client';

export class HttpMetrics {
  private readonly requests: Counter<'handler' | 'method' | 'status'>;

  constructor(readonly registry: Registry) {
    this.requests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered by the REST API, by handler (route), method and status code.',
      labelNames: ['handler', 'method', 'status'],
      registers: [registry],
    });
  }

  record(handler: string, method: string, status: number): void {
    this.requests.inc({ handler, method, status: String(status) });
  }

  /** Answers a scrape in Prometheus' text format. */
  async answer(res: ServerResponse): Promise<void> {
    const text = await this.registry.metrics();
    if (res.headersSent || res.destroyed) return;
    res.writeHead(200, { 'content-type': this.registry.contentType, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}
