// The playground as HTTP: its files on the REST port (content types, caching, --no-ui), the
// meta tag naming the gRPC port, and CORS on the gRPC port: preflights from the playground's
// origin (and --allowed-origins) are allowed, others refused, and no `*` when an API key is set.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { playgroundGrpcHost } from '../src/adapter-openai/playground-assets.ts';
import { CorsPolicy, pageOrigins } from '../src/service/cors-policy.ts';
import { type FullServer, startFullServer } from './helpers/full-server.ts';
import { parseCli } from './helpers/cli-flags.ts';

const GENERATE_STREAM = '/mlxserve.v1.GenerationService/GenerateStream';
const STATUS = '/mlxserve.v1.GenerationService/GetServerStatus';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request, as a browser sends it (fetch would not let us set Origin). */
function request(url: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const preflight = (server: FullServer, origin: string) =>
  request(`${server.grpcBase}${GENERATE_STREAM}`, 'OPTIONS', {
    origin,
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization,connect-protocol-version,content-type',
  });

describe('the playground on the REST port', () => {
  let server: FullServer;
  before(async () => {
    server = await startFullServer();
  });
  after(() => server?.close());

  test('/ is the page, revalidated on each load, naming the gRPC port', async () => {
    const page = await request(`${server.restBase}/`, 'GET');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page.headers['cache-control'], 'no-cache');
    assert.match(page.body, new RegExp(`<meta name="mlx-grpc-port" content="${server.server.grpc.port}">`));
    assert.doesNotMatch(page.body, /https?:\/\/(?!127\.0\.0\.1)/, 'nothing is loaded from elsewhere (offline)');
    const head = await request(`${server.restBase}/`, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  test('the bundles have hashed names, their content types and an immutable cache lifetime', async () => {
    const page = await request(`${server.restBase}/`, 'GET');
    const assets = [...page.body.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    assert.equal(assets.length, 2, page.body);
    const types: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
    for (const path of assets) {
      assert.match(path, /^\/assets\/(main|style)-[A-Z0-9]{8}\.(js|css)$/);
      const asset = await request(`${server.restBase}${path}`, 'GET');
      assert.equal(asset.status, 200, path);
      assert.equal(asset.headers['content-type'], types[path.split('.').pop() ?? '']);
      assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.ok(asset.body.length > 1000, path);
    }
    const missing = await request(`${server.restBase}/assets/main-NOSUCH00.js`, 'GET');
    assert.equal(missing.status, 404);
    // The API's routes are untouched.
    assert.equal((await request(`${server.restBase}/v1/models`, 'GET')).status, 200);
  });

  test('CORS: the playground origin may call the gRPC service; other origins are refused', async () => {
    const allowed = await preflight(server, server.restBase);
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers['access-control-allow-origin'], server.restBase);
    assert.match(String(allowed.headers['access-control-allow-headers']), /\bauthorization\b/i);
    assert.match(String(allowed.headers['access-control-allow-headers']), /\bconnect-protocol-version\b/i);
    assert.match(String(allowed.headers['access-control-allow-methods']), /\bPOST\b/);
    // localhost is the same machine as 127.0.0.1, where the server listens.
    const port = new URL(server.restBase).port;
    assert.equal((await preflight(server, `http://localhost:${port}`)).status, 204);

    const refused = await preflight(server, 'http://evil.example');
    assert.equal(refused.status, 403);
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
    assert.equal((await preflight(server, `http://127.0.0.1:${Number(port) + 1}`)).status, 403);

    // The call itself carries the header the browser checks.
    const call = await request(
      `${server.grpcBase}${STATUS}`,
      'POST',
      { origin: server.restBase, 'content-type': 'application/json', 'connect-protocol-version': '1' },
      '{}',
    );
    assert.equal(call.status, 200, call.body);
    assert.equal(call.headers['access-control-allow-origin'], server.restBase);
    assert.match(call.body, /"engineState":"ENGINE_STATE_READY"/);
    // Clients that are not browsers send no Origin and see no difference.
    const plain = await request(`${server.grpcBase}${STATUS}`, 'POST', { 'content-type': 'application/json' }, '{}');
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['access-control-allow-origin'], undefined);
  });
});

describe('with an API key and --allowed-origins', () => {
  let server: FullServer;
  before(async () => {
    server = await startFullServer({ apiKey: 'sesame', allowedOrigins: ['http://app.example:3000'] });
  });
  after(() => server?.close());

  test('the playground and the listed origins are allowed, not every origin', async () => {
    for (const origin of [server.restBase, 'http://app.example:3000']) {
      const r = await preflight(server, origin);
      assert.equal(r.status, 204, origin);
      assert.equal(r.headers['access-control-allow-origin'], origin);
    }
    const refused = await preflight(server, 'http://evil.example');
    assert.equal(refused.status, 403);
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
    // The key is still required of an allowed origin.
    const call = await request(
      `${server.grpcBase}${STATUS}`,
      'POST',
      { origin: server.restBase, 'content-type': 'application/json', 'connect-protocol-version': '1' },
      '{}',
    );
    assert.equal(call.status, 401);
    assert.equal(call.headers['access-control-allow-origin'], server.restBase, 'the browser may read the 401');
  });
});

describe('--no-ui', () => {
  let server: FullServer;
  before(async () => {
    server = await startFullServer({ ui: false });
  });
  after(() => server?.close());

  test('/ is 404 again and no page origin is allowed on the gRPC port', async () => {
    const page = await request(`${server.restBase}/`, 'GET');
    assert.equal(page.status, 404);
    assert.match(page.headers['content-type'] ?? '', /application\/json/);
    assert.equal((await request(`${server.restBase}/index.html`, 'GET')).status, 404);
    assert.equal((await preflight(server, server.restBase)).status, 403);
  });
});

describe('flags and origins', () => {
  test('--no-ui and --allowed-origins parse; a bad origin is a usage error', async () => {
    assert.equal((await parseCli()).serve?.ui, true);
    assert.equal((await parseCli('--no-ui')).serve?.ui, false);
    const { serve: flags } = await parseCli('--allowed-origins', 'http://a.example:3000, https://b.example', '--allowed-origins', '*');
    assert.deepEqual(flags?.allowedOrigins, ['http://a.example:3000', 'https://b.example', '*']);
    const bad = await parseCli('--allowed-origins', 'a.example/path');
    assert.equal(bad.serve, undefined);
    assert.match(bad.error, /--allowed-origins/);
  });

  test("the page origins of a host: the host itself, or this machine's names for a local or wildcard host", () => {
    assert.deepEqual(pageOrigins('0.0.0.0', 8080), ['http://localhost:8080', 'http://127.0.0.1:8080', 'http://[::1]:8080']);
    assert.deepEqual(pageOrigins('127.0.0.1', 8080), ['http://localhost:8080', 'http://127.0.0.1:8080', 'http://[::1]:8080']);
    assert.deepEqual(pageOrigins('10.0.0.5', 8080), ['http://10.0.0.5:8080']);
    assert.deepEqual(pageOrigins('fd00::5', 8080), ['http://[fd00::5]:8080']);
    const policy = new CorsPolicy(['http://A.example:3000/']);
    assert.ok(policy.allows('http://a.example:3000'));
    assert.ok(!policy.allows('http://a.example:3001'));
    assert.ok(new CorsPolicy(['*']).allows('http://anything.example'));
  });

  test('the page names the gRPC host only when it is not where the page came from', () => {
    assert.equal(playgroundGrpcHost('127.0.0.1', '127.0.0.1'), undefined);
    assert.equal(playgroundGrpcHost('0.0.0.0', '10.0.0.5'), undefined);
    assert.equal(playgroundGrpcHost('10.0.0.5', '10.0.0.5'), undefined);
    assert.equal(playgroundGrpcHost('10.0.0.6', '0.0.0.0'), '10.0.0.6');
  });
});
