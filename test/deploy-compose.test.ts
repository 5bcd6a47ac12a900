// The Compose deployment (deploy/compose.yaml) without Docker: the file's own consistency (replicas,
// what HAProxy's config reads, Prometheus' targets, the replicas' flags against our CLI, the stop
// grace period against the drain), deploy/prometheus/prometheus.yml and every query of the Grafana
// dashboard checked by promtool, every metric the dashboard names found in what a real replica and
// a real HAProxy export, and a real Prometheus on the shipped config (only its targets rewritten)
// scraping two real replicas and a real HAProxy, answering the dashboard's own queries. With Docker
// at hand, `docker compose config` and `docker build` run too.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import type { ServeFlags } from '../src/cli/program.ts';
import { type FullServer, startFullServer, waitUntil } from './helpers/full-server.ts';
import { type Balancer, freePort, haproxySkip, SHIPPED_HAPROXY_CONFIG, startHaproxy } from './helpers/haproxy.ts';
import { parsePrometheusText, type Sample, scrape } from './helpers/prometheus-text.ts';
import { skipUnlessInstalled } from './helpers/required-tool.ts';
import { parseCli } from './helpers/cli-flags.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const COMPOSE_FILE = join(DEPLOY, 'compose.yaml');
const PROMETHEUS_CONFIG_FILE = join(DEPLOY, 'prometheus', 'prometheus.yml');
const DASHBOARD_FILE = join(DEPLOY, 'grafana', 'dashboards', 'mlx-batch-server.json');

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
const PROMETHEUS = ['/usr/bin/prometheus', '/usr/local/bin/prometheus'].find((p) => existsSync(p));

/** The `skip` option for tests that need promtool or prometheus (see skipUnlessInstalled). */
const prometheusToolSkip = (name: string, path: string | undefined) =>
  skipUnlessInstalled(!path && `${name} is not installed`, 'run scripts/setup.sh (or apt-get install prometheus)');

/** Why `docker <args>` cannot run here (no client, no Compose plugin, no daemon), or false. */
function dockerSkip(args: string[]): string | false {
  const r = spawnSync('docker', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) return `docker is not available (${r.error.message})`;
  if (r.status !== 0) return `\`docker ${args.join(' ')}\` failed: ${(r.stderr || r.stdout).trim().split('\n')[0]}`;
  return false;
}

// --- The files as written -------------------------------------------------------------------

interface ComposeService {
  build?: { context: string; dockerfile?: string; dockerfile_inline?: string };
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string> | string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, unknown> | string[];
  stop_grace_period?: string;
}
interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs: { targets: string[] }[];
}
interface PrometheusConfig {
  global?: Record<string, unknown>;
  scrape_configs: ScrapeConfig[];
}
interface GrafanaTarget {
  expr: string;
  legendFormat?: string;
  datasource?: { uid?: string };
}
interface GrafanaPanel {
  type: string;
  title: string;
  datasource?: { uid?: string };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
}
interface GrafanaVariable {
  name: string;
  type: string;
  query?: string | { query: string };
  current?: { value?: string | string[] };
  allValue?: string;
}
interface Dashboard {
  panels: GrafanaPanel[];
  templating: { list: GrafanaVariable[] };
}

// Merge keys (`<<: *replica`) are YAML 1.1, which Compose reads; `merge` turns them on.
const compose = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const prometheusConfig = parse(readFileSync(PROMETHEUS_CONFIG_FILE, 'utf8')) as PrometheusConfig;
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;

const replicaNames = Object.keys(compose.services).filter((name) => /^replica\d+$/.test(name));

function environment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
  return Object.fromEntries(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

/** Seconds of a Compose duration (`45s`, `1m30s`, `2m`, `1500ms`). */
function composeSeconds(duration: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 0.000001 };
  const parts = [...duration.matchAll(/(\d+(?:\.\d+)?)(h|ms|us|m|s)/g)];
  assert.ok(parts.length > 0 && parts.map((p) => p[0]).join('') === duration, `not a Compose duration: ${duration}`);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * units[unit], 0);
}

/** Each replica's command as our CLI parses it: its flags, defaults applied, or its usage error. */
const replicaCli = new Map(
  await Promise.all(replicaNames.map(async (name) => [name, await parseCli(...(compose.services[name].command ?? []))] as const)),
);

function replicaFlags(name: string): ServeFlags {
  const parsed = replicaCli.get(name);
  assert.ok(parsed?.serve, `${name}'s command is refused by our CLI: ${parsed?.error}`);
  return parsed.serve;
}

/** A replica's REST and gRPC ports, from its command (or the CLI's defaults). */
function replicaPorts(name: string): { rest: string; grpc: string } {
  const { port, grpcPort } = replicaFlags(name);
  return { rest: String(port), grpc: String(grpcPort) };
}

// --- The dashboard's queries --------------------------------------------------------------------

/** Grafana's built-in variables, as a query for the last hour at a 1 s scrape would see them. */
const GRAFANA_BUILTINS: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '1h' };

/** A dashboard variable's value for the queries: its current one, or "All" as its allValue. */
function variableValues(): Record<string, string> {
  const values: Record<string, string> = { ...GRAFANA_BUILTINS };
  for (const v of dashboard.templating.list) {
    if (v.type === 'datasource') continue;
    const current = [v.current?.value ?? []].flat();
    assert.equal(current.length, 1, `variable ${v.name} has no single current value`);
    values[v.name] = current[0] === '$__all' ? (v.allValue ?? '.+') : current[0];
  }
  return values;
}

function substitute(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$(?:\{(\w+)(?::\w+)?\}|(\w+))/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    assert.ok(name in values, `unknown variable ${whole}`);
    return values[name];
  });
}

interface Query {
  /** The panel (or variable) and legend it belongs to. */
  where: string;
  expr: string;
}

/** Every PromQL expression of the dashboard, variables substituted: panel targets and the series selectors of label_values() variables. */
function dashboardQueries(): Query[] {
  const values = variableValues();
  const queries: Query[] = [];
  const visit = (panels: GrafanaPanel[]) => {
    for (const panel of panels) {
      for (const t of panel.targets ?? [])
        queries.push({ where: `${panel.title} / ${t.legendFormat ?? ''}`, expr: substitute(t.expr, values) });
      visit(panel.panels ?? []);
    }
  };
  visit(dashboard.panels);
  for (const v of dashboard.templating.list) {
    if (v.type !== 'query') continue;
    const query = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
    const m = query.match(/^label_values\((.+),\s*\w+\)$/);
    assert.ok(m, `variable ${v.name}: not a label_values(selector, label) query: ${query}`);
    queries.push({ where: `variable ${v.name}`, expr: substitute(m[1], values) });
  }
  return queries;
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names an expression selects: identifiers that are not functions, keywords, labels or strings. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const [, name, call] of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (!call && !PROMQL_WORDS.has(name.toLowerCase())) names.push(name);
  }
  return names;
}

/** Series Prometheus makes itself for every target. */
const PROMETHEUS_SERIES = new Set(['up']);

function runTool(path: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(path, args, { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

// --- Compose consistency -------------------------------------------------------------------------

describe('deploy/compose.yaml', () => {
  test('two or more replicas, each built from the root Dockerfile, sharing one model-cache volume', () => {
    assert.ok(replicaNames.length >= 2, `replica services: ${replicaNames.join(', ')}`);
    const volumes = new Set<string>();
    for (const name of replicaNames) {
      const { build, volumes: mounts = [] } = compose.services[name];
      assert.ok(build, `${name} has no build`);
      assert.equal(resolve(DEPLOY, build.context, build.dockerfile ?? 'Dockerfile'), join(ROOT, 'Dockerfile'), name);
      const cache = mounts.find((m) => m.split(':')[1] === '/cache');
      assert.ok(cache, `${name} mounts nothing at /cache, the image's model-cache volume`);
      volumes.add(cache.split(':')[0]);
    }
    assert.equal(volumes.size, 1, `the replicas' caches: ${[...volumes].join(', ')}`);
    // The Dockerfile's volume and the cache locations the server reads are where the replicas mount.
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^VOLUME \/cache$/m);
    assert.match(dockerfile, /MLX_BATCH_SERVER_CACHE=\/cache\//);
    assert.match(dockerfile, /HF_HOME=\/cache\//);
  });

  test('the HAProxy service sets every variable haproxy.cfg reads, pointing at the replicas and their ports', () => {
    const haproxy = compose.services.haproxy;
    assert.ok(haproxy, 'no haproxy service');
    const read = new Set([...SHIPPED_HAPROXY_CONFIG.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]));
    assert.ok(read.size >= 7, `haproxy.cfg reads ${[...read].join(', ')}`);
    const env = environment(haproxy);
    for (const name of read) assert.ok(env[name], `the haproxy service does not set ${name}`);
    // haproxy.cfg names two replicas per backend; each points at a distinct replica service.
    const targets = new Set<string>();
    for (const [variable, value] of Object.entries(env)) {
      const m = variable.match(/^REPLICA(\d+)_(REST|GRPC)$/);
      if (!m) continue;
      const [host, port] = value.split(':');
      assert.ok(replicaNames.includes(host), `${variable}=${value}: no replica service ${host}`);
      assert.equal(port, replicaPorts(host)[m[2] === 'REST' ? 'rest' : 'grpc'], `${variable}=${value}: not ${host}'s ${m[2]} port`);
      targets.add(`${m[2]} ${host}`);
    }
    assert.equal(targets.size, 4, [...targets].join(', '));
    // The file HAProxy runs is the repository's, mounted where its entrypoint reads it.
    const configPath =
      haproxy.build?.dockerfile_inline?.match(/"-f",\s*"([^"]+)"/)?.[1] ?? haproxy.command?.[haproxy.command.indexOf('-f') + 1];
    assert.ok(configPath, 'cannot tell which config file the haproxy service runs');
    const mount = (haproxy.volumes ?? []).find((v) => v.split(':')[1] === configPath);
    assert.ok(mount, `nothing mounted at ${configPath}`);
    assert.equal(resolve(DEPLOY, mount.split(':')[0]), join(DEPLOY, 'haproxy', 'haproxy.cfg'));
    for (const bind of ['REST_BIND', 'GRPC_BIND', 'STATS_BIND']) {
      const port = env[bind].split(':').at(-1);
      assert.ok(
        (haproxy.ports ?? []).some((p) => p.endsWith(`:${port}`)),
        `${bind}=${env[bind]} is not published`,
      );
    }
  });

  test('Prometheus scrapes every replica on its REST port and HAProxy on STATS_BIND, by service name', () => {
    const prometheus = compose.services.prometheus;
    assert.ok(prometheus, 'no prometheus service');
    const mount = (prometheus.volumes ?? []).find((v) => v.split(':')[1] === '/etc/prometheus/prometheus.yml');
    assert.ok(mount, 'deploy/prometheus/prometheus.yml is not mounted where the image reads its config');
    assert.equal(resolve(DEPLOY, mount.split(':')[0]), PROMETHEUS_CONFIG_FILE);

    const scraped = new Set<string>();
    for (const job of prometheusConfig.scrape_configs) {
      assert.equal(job.metrics_path ?? '/metrics', '/metrics');
      for (const target of job.static_configs.flatMap((c) => c.targets)) {
        const [host, port] = target.split(':');
        assert.ok(host in compose.services, `target ${target}: no service ${host}`);
        if (replicaNames.includes(host)) assert.equal(port, replicaPorts(host).rest, `target ${target} is not ${host}'s REST port`);
        else if (host === 'haproxy')
          assert.equal(port, environment(compose.services.haproxy).STATS_BIND.split(':').at(-1), `target ${target} is not STATS_BIND`);
        else assert.fail(`target ${target} is neither a replica nor HAProxy`);
        scraped.add(host);
      }
    }
    assert.deepEqual([...scraped].sort(), [...replicaNames, 'haproxy'].sort());
    // The dashboard's job variables default to the jobs that config defines.
    const jobs = new Set(prometheusConfig.scrape_configs.map((j) => j.job_name));
    for (const v of dashboard.templating.list.filter((v) => /job/.test(v.name))) {
      assert.ok(
        jobs.has(String(v.current?.value)),
        `dashboard variable ${v.name} defaults to ${v.current?.value}, not a job of prometheus.yml`,
      );
    }
  });

  test('the replicas use only flags our CLI accepts; stop_grace_period exceeds shutdown delay + drain timeout', () => {
    for (const name of replicaNames) {
      const { command, stop_grace_period: grace } = compose.services[name];
      assert.ok(command, `${name} has no command (the image's CMD alone binds --host 0.0.0.0 but sets no drain)`);
      assert.equal(replicaCli.get(name)?.error, '', `${name}: our CLI refuses its command`);
      const flags = replicaFlags(name);
      assert.equal(flags.host, '0.0.0.0', `${name} must listen on every interface`);
      const { shutdownDelay: delay, drainTimeout: drain } = flags;
      assert.ok(grace, `${name} has no stop_grace_period (Docker's default is 10 s)`);
      assert.ok(composeSeconds(grace) > delay + drain, `${name}: stop_grace_period ${grace} ≤ ${delay} s delay + ${drain} s drain`);
    }
  });

  test('Grafana is provisioned with the Prometheus service and the committed dashboard', () => {
    const grafana = compose.services.grafana;
    assert.ok(grafana, 'no grafana service');
    const mounts = new Map((grafana.volumes ?? []).map((v) => [v.split(':')[1], v.split(':')[0]]));
    assert.equal(resolve(DEPLOY, mounts.get('/etc/grafana/provisioning') ?? ''), join(DEPLOY, 'grafana', 'provisioning'));
    const provider = parse(readFileSync(join(DEPLOY, 'grafana', 'provisioning', 'dashboards', 'mlx-batch-server.yaml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    const dashboardsDir = mounts.get(provider.providers[0].options.path);
    assert.ok(dashboardsDir, `nothing mounted at the provider's path ${provider.providers[0].options.path}`);
    assert.equal(resolve(DEPLOY, dashboardsDir), dirname(DASHBOARD_FILE));
    const datasources = parse(readFileSync(join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'prometheus.yaml'), 'utf8')) as {
      datasources: { type: string; url: string }[];
    };
    const url = new URL(datasources.datasources[0].url);
    assert.equal(datasources.datasources[0].type, 'prometheus');
    assert.ok(url.hostname in compose.services, `datasource ${url}: no such service`);
    assert.equal(url.port, '9090');
    // Every panel and query goes through the datasource variable.
    const variable = dashboard.templating.list.find((v) => v.type === 'datasource');
    assert.ok(variable, 'no datasource variable');
    const visit = (panels: GrafanaPanel[]): void => {
      for (const p of panels) {
        if (p.type !== 'row') assert.equal(p.datasource?.uid, `\${${variable.name}}`, `panel ${p.title}`);
        for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, `\${${variable.name}}`, `panel ${p.title}`);
        visit(p.panels ?? []);
      }
    };
    visit(dashboard.panels);
  });

  const composeSkip = dockerSkip(['compose', 'version']);
  test('`docker compose config` accepts it', { skip: composeSkip }, () => {
    const r = spawnSync('docker', ['compose', '-f', COMPOSE_FILE, 'config', '--format', 'json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const resolved = JSON.parse(r.stdout) as { services: Record<string, ComposeService> };
    for (const name of [...replicaNames, 'haproxy', 'prometheus', 'grafana']) assert.ok(name in resolved.services, name);
  });

  // A whole build (npm ci, the native kernels, tsc): minutes, so only where a daemon runs.
  const buildSkip = dockerSkip(['info']);
  test('`docker build` builds the image, which runs the CLI', { skip: buildSkip, timeout: 30 * 60_000 }, () => {
    const tag = `mlx-batch-server:deploy-compose-test-${process.pid}`;
    try {
      const built = spawnSync('docker', ['build', '-t', tag, ROOT], { encoding: 'utf8', maxBuffer: 64 * 1024 ** 2 });
      assert.equal(built.status, 0, built.stderr.slice(-4000));
      const ran = spawnSync('docker', ['run', '--rm', tag, '--help'], { encoding: 'utf8' });
      assert.equal(ran.status, 0, ran.stderr);
      assert.match(ran.stdout, /--drain-timeout/);
    } finally {
      spawnSync('docker', ['image', 'rm', '-f', tag]);
    }
  });
});

// --- promtool -----------------------------------------------------------------------------------------

describe('promtool on the Prometheus config and the dashboard', { skip: prometheusToolSkip('promtool', PROMTOOL) }, () => {
  test('`promtool check config` passes on deploy/prometheus/prometheus.yml', () => {
    const r = runTool(PROMTOOL as string, ['check', 'config', PROMETHEUS_CONFIG_FILE]);
    assert.equal(r.status, 0, r.output);
  });

  test('every dashboard query is valid PromQL (`promtool check rules`, one recording rule each)', () => {
    const queries = dashboardQueries();
    assert.ok(queries.length >= 20, `${queries.length} queries`);
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-rules-'));
    try {
      const check = (exprs: string[]) => {
        const file = join(dir, 'rules.yml');
        const rules = exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr }));
        writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
        return runTool(PROMTOOL as string, ['check', 'rules', file]);
      };
      const r = check(queries.map((q) => q.expr));
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, new RegExp(`SUCCESS: ${queries.length} rules found`));
      // The same check refuses a query that does not parse: it reads what it is given.
      assert.notEqual(check([`${queries[0].expr})`]).status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// --- Real replicas, HAProxy and Prometheus -------------------------------------------------------

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

async function promQuery(base: string, expr: string): Promise<PromResult[]> {
  const res = await fetch(`${base}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: PromResult[] } };
  assert.equal(body.status, 'success', `${expr}: ${body.error}`);
  return body.data.result;
}

async function chat(base: string, body: Record<string, unknown>): Promise<{ status: number; content: string }> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ max_tokens: 6, temperature: 0, ...body }),
  });
  const json = (await res.json()) as { choices?: { message: { content: string } }[] };
  return { status: res.status, content: json.choices?.[0]?.message.content ?? '' };
}

const liveSkip = haproxySkip() || prometheusToolSkip('prometheus', PROMETHEUS);

describe('Prometheus scraping two replicas and HAProxy', { skip: liveSkip }, () => {
  const replicas: FullServer[] = [];
  let lb: Balancer | undefined;
  let prometheus: ChildProcess | undefined;
  let prometheusExited: Promise<void> | undefined;
  let prometheusLog = '';
  let promBase = '';
  let dir = '';

  before(async () => {
    for (let i = 0; i < 2; i++) replicas.push(await startFullServer());
    // A request on each replica first: a labelled series appears with its first request, and
    // rate() counts from a series' first sample, so Prometheus must see the series before the
    // traffic the test measures.
    for (const r of replicas) assert.equal((await chat(r.restBase, { messages: [{ role: 'user', content: 'warm up' }] })).status, 200);
    lb = await startHaproxy(
      SHIPPED_HAPROXY_CONFIG,
      replicas.map((r) => ({ rest: new URL(r.restBase).host, grpc: r.server.grpcTarget })),
    );
    // The shipped config with only the targets rewritten (Compose service → the process started
    // here) and a short interval, so a test sees several scrapes.
    const where: Record<string, string> = { haproxy: new URL(lb.statsBase).host };
    replicas.forEach((r, i) => {
      where[`replica${i + 1}`] = new URL(r.restBase).host;
    });
    const config = structuredClone(prometheusConfig);
    config.global = { ...config.global, scrape_interval: '1s', evaluation_interval: '1s' };
    for (const job of config.scrape_configs) {
      for (const group of job.static_configs) {
        group.targets = group.targets.map((target) => {
          const host = where[target.split(':')[0]];
          assert.ok(host, `no local process for target ${target}`);
          return host;
        });
      }
    }
    dir = mkdtempSync(join(tmpdir(), 'prometheus-test-'));
    const configFile = join(dir, 'prometheus.yml');
    writeFileSync(configFile, stringify(config));
    const port = await freePort();
    promBase = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      PROMETHEUS as string,
      [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr?.on('data', (d) => {
      prometheusLog = `${prometheusLog}${d}`.slice(-8000);
    });
    const proc = prometheus;
    prometheusExited = new Promise((r) => proc.once('exit', () => r()));
    await waitUntil(
      'Prometheus is ready',
      async () => {
        if (proc.exitCode !== null) throw new Error(`prometheus exited with ${proc.exitCode}: ${prometheusLog}`);
        return (await fetch(`${promBase}/-/ready`).catch(() => undefined))?.status === 200;
      },
      750,
    );
  });

  after(async () => {
    if (prometheus && prometheus.exitCode === null) prometheus.kill('SIGTERM');
    await prometheusExited;
    if (dir) rmSync(dir, { recursive: true, force: true });
    await lb?.close();
    await Promise.all(replicas.map((r) => r.close()));
  });

  test('every target is up: both replicas and HAProxy', async () => {
    await waitUntil(
      'Prometheus has scraped every target',
      async () => {
        const up = await promQuery(promBase, 'up');
        return up.length === 3 && up.every((s) => s.value[1] === '1');
      },
      500,
    );
    const up = await promQuery(promBase, 'up');
    assert.deepEqual(up.map((s) => s.metric.job).sort(), ['haproxy', 'mlx-batch-server', 'mlx-batch-server']);
  });

  test("requests through HAProxy: every metric the dashboard names is exported, and its queries return the traffic's figures", async (t) => {
    const balancer = lb as Balancer;
    await waitUntil(
      "Prometheus has both replicas' token counters",
      async () => (await promQuery(promBase, 'vllm:generation_tokens_total')).length === 2,
      500,
    );
    // Conversations keyed for affinity (their second turns reuse the first's prefix), one refused
    // request (longer than the tiny model's context) so the error counter has a sample.
    for (let c = 0; c < 4; c++) {
      const messages = [{ role: 'user', content: `conversation ${c}: ${'tell me a story about a lighthouse keeper. '.repeat(3)}` }];
      const first = await chat(balancer.rest, { messages, prompt_cache_key: `chat-${c}` });
      assert.equal(first.status, 200);
      messages.push({ role: 'assistant', content: first.content }, { role: 'user', content: 'and then?' });
      assert.equal((await chat(balancer.rest, { messages, prompt_cache_key: `chat-${c}` })).status, 200);
    }
    const refused = await chat(balancer.rest, { messages: [{ role: 'user', content: 'x'.repeat(20_000) }] });
    assert.equal(refused.status, 400);

    // Names: what the replicas and HAProxy export now, histograms with samples.
    const exported: Sample[] = [...(await scrape(replicas[0].restBase)), ...(await scrape(replicas[1].restBase))];
    const haproxyText = await (await fetch(`${balancer.statsBase}/metrics`)).text();
    exported.push(...parsePrometheusText(haproxyText));
    const names = new Set(exported.map((s) => s.name));
    const queries = dashboardQueries();
    const used = new Set(queries.flatMap((q) => metricNames(q.expr)));
    assert.ok(used.size >= 20, `the dashboard names ${used.size} metrics: ${[...used].join(', ')}`);
    const missing = [...used].filter((name) => !names.has(name) && !PROMETHEUS_SERIES.has(name));
    assert.deepEqual(missing, [], `the dashboard names metrics nothing exports: ${missing.join(', ')}`);

    // The dashboard's own queries, on what Prometheus scraped.
    const panelQuery = (where: string) => {
      const q = queries.find((q) => q.where === where);
      assert.ok(q, `no dashboard query ${where}`);
      return q.expr;
    };
    const checks: [string, (v: number) => boolean][] = [
      ['Generation throughput / total', (v) => v > 0],
      ['Prompt throughput / total', (v) => v > 0],
      ['Time to first token / p90 (all)', (v) => v > 0 && Number.isFinite(v)],
      ['Prefix-cache hit rate / all', (v) => v > 0 && v <= 1],
      ['Requests per backend server / {{proxy}}/{{server}}', (v) => v > 0],
    ];
    const seen = new Map<string, string>();
    await waitUntil(
      "Prometheus answers the dashboard's queries with the traffic",
      async () => {
        for (const [where, ok] of checks) {
          const result = await promQuery(promBase, panelQuery(where));
          const values = result.map((r) => Number(r.value[1]));
          seen.set(where, values.join(', '));
          if (!values.some(ok)) return false;
        }
        return true;
      },
      750,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}: ${[...seen].map(([w, v]) => `${w} = [${v}]`).join('; ')}`);
    });
    t.diagnostic([...seen].map(([w, v]) => `${w} = [${v}]`).join('; '));

    // Per replica: both replicas report, labelled by instance.
    const perReplica = await promQuery(promBase, panelQuery('Requests running and waiting / running {{instance}}'));
    assert.equal(new Set(perReplica.map((r) => r.metric.instance)).size, 2);
    // The refused request, by its gRPC code (a new series: its rate starts at the next one).
    await waitUntil(
      'Prometheus has the refused request',
      async () =>
        (await promQuery(promBase, 'mlxserve:request_errors_total{code="invalid_argument"}')).some((r) => Number(r.value[1]) >= 1),
      500,
    );
  });
});
