// deploy/k8s/ checked without a cluster: kubeconform validates every resource (the ServiceMonitors
// against the Prometheus Operator's CRD) strictly and offline, against each Kubernetes version
// scripts/setup-kubeconform.sh fetched schemas for; and what no schema can see is checked here:
// the container's flags exist in our CLI, the probes reach the ports the server listens on, the
// termination grace period covers the shutdown sequence, Services and ServiceMonitors select pods
// and ports that exist, and the HAProxy ConfigMap carries deploy/haproxy/haproxy.cfg's directives
// (only its servers differ), with every variable it reads set, and HAProxy itself accepts it.
// Finally the ConfigMap's config runs in the real HAProxy against the cluster reduced to a DNS
// server answering the headless Service's name and two real replicas (the executable on a tiny
// model) behind it: its server-template slots fill from DNS, keys keep to a replica over REST and
// gRPC, and a replica that leaves DNS leaves the pool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { parseAllDocuments, stringify } from 'yaml';
import { byteSize } from '../src/cli/option-parsers.ts';
import { engineOptions, type ServeFlags } from '../src/cli/program.ts';
import { GenerationService } from '../src/gen/mlxserve/v1/generation_service_pb.ts';
import { type CliProcess, waitForHealth } from './helpers/cli-process.ts';
import { waitUntil } from './helpers/full-server.ts';
import {
  freePort,
  HAPROXY,
  type HaproxyProcess,
  haproxyStats,
  haproxySkip,
  launchReplica,
  spawnHaproxy,
  SHIPPED_HAPROXY_CONFIG,
  type StatsRow,
} from './helpers/haproxy.ts';
import { skipUnlessInstalled } from './helpers/required-tool.ts';
import { parseCli } from './helpers/cli-flags.ts';
import { metricValue, scrape } from './helpers/prometheus-text.ts';
import { TEST_MODEL_SPEC } from './helpers/test-server.ts';
import { writeTinyModel } from './helpers/tiny-model.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const K8S_DIR = join(ROOT, 'deploy', 'k8s');
const KUBECONFORM = join(ROOT, '.tools', 'bin', 'kubeconform');
const SCHEMAS = join(ROOT, '.tools', 'k8s-schemas');
const SERVICE_MONITOR_SCHEMA = join(SCHEMAS, 'crds', 'monitoring.coreos.com', 'servicemonitor_v1.json');

// --- The manifests ----------------------------------------------------------------------------

type Labels = Record<string, string>;
interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
  periodSeconds?: number;
  failureThreshold?: number;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Deployment {
  spec: {
    replicas: number;
    selector: { matchLabels: Labels };
    template: {
      metadata: { labels: Labels };
      spec: {
        containers: Container[];
        terminationGracePeriodSeconds?: number;
        volumes?: { name: string; configMap?: { name: string } }[];
      };
    };
  };
}
interface Service {
  spec: { clusterIP?: string; selector: Labels; ports: { name: string; port: number; targetPort: number | string }[] };
}
interface ServiceMonitor {
  spec: { selector: { matchLabels: Labels }; endpoints: { port: string; path?: string }[] };
}
interface ConfigMap {
  data: Record<string, string>;
}
interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Labels };
  file: string;
}

const resources: Resource[] = readdirSync(K8S_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8')).map((doc) => {
      assert.deepEqual(doc.errors, [], `${file} parses`);
      return { ...(doc.toJS() as Omit<Resource, 'file'>), file };
    }),
  );

const all = (kind: string) => resources.filter((r) => r.kind === kind);
function get<T>(kind: string, name: string): T & Resource {
  const found = resources.find((r) => r.kind === kind && r.metadata.name === name);
  assert.ok(found, `deploy/k8s/ has no ${kind} ${name}`);
  return found as T & Resource;
}
const selects = (selector: Labels, labels: Labels | undefined) => Object.entries(selector).every(([k, v]) => labels?.[k] === v);

const server = get<Deployment>('Deployment', 'mlx-batch-server');
const serverContainer = server.spec.template.spec.containers[0];
const haproxy = get<Deployment>('Deployment', 'mlx-batch-haproxy');
const haproxyContainer = haproxy.spec.template.spec.containers[0];

const serverArgs = serverContainer.args ?? [];
/** The container args as our CLI parses them: its flags, defaults applied, or its usage error. */
const parsedServerArgs = await parseCli(...serverArgs);
function serverFlags(): ServeFlags {
  assert.ok(parsedServerArgs.serve, `our CLI refuses the container args: ${parsedServerArgs.error}`);
  return parsedServerArgs.serve;
}

function containerPort(container: Container, name: string): number {
  const port = container.ports?.find((p) => p.name === name);
  assert.ok(port, `container ${container.name} has a port named ${name}`);
  return port.containerPort;
}
/** A Service's target port (a number, or the name of a container port): the container port it reaches. */
function portNumber(container: Container, port: number | string): number {
  if (typeof port === 'string') return containerPort(container, port);
  assert.ok(
    container.ports?.some((p) => p.containerPort === port),
    `container ${container.name} has port ${port}`,
  );
  return port;
}

// --- kubeconform --------------------------------------------------------------------------------

const kubernetesVersions = existsSync(SCHEMAS)
  ? readdirSync(SCHEMAS)
      .map((d) => /^v(\d+\.\d+\.\d+)-local-strict$/.exec(d)?.[1])
      .filter((v) => v !== undefined)
  : [];
const kubeconformMissing = !existsSync(KUBECONFORM)
  ? 'kubeconform is not installed'
  : kubernetesVersions.length === 0 || !existsSync(SERVICE_MONITOR_SCHEMA)
    ? 'the Kubernetes JSON schemas are missing'
    : undefined;
const kubeconformSkip = skipUnlessInstalled(kubeconformMissing, 'run scripts/setup-kubeconform.sh');

interface KubeconformOutput {
  resources: { filename: string; kind: string; name: string; status: string; msg: string }[];
  summary: { valid: number; invalid: number; errors: number; skipped: number };
}

/** kubeconform -strict on `target` with the local schemas only, for Kubernetes `version`. */
function kubeconform(target: string, version: string): { status: number | null; output: KubeconformOutput; stderr: string } {
  const run = spawnSync(
    KUBECONFORM,
    [
      '-strict',
      '-summary',
      '-verbose',
      '-output',
      'json',
      '-kubernetes-version',
      version,
      '-schema-location',
      join(SCHEMAS, '{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json'),
      '-schema-location',
      join(SCHEMAS, 'crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'),
      target,
    ],
    {
      encoding: 'utf8',
      // Every schema and every $ref in them is a local file; a fetch would go to this closed port
      // and fail, so a schema that still points at the network shows up as an error here.
      env: { PATH: process.env.PATH, HTTP_PROXY: 'http://127.0.0.1:9', HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: '' },
    },
  );
  assert.ok(run.stdout, `kubeconform printed nothing: ${run.error ?? run.stderr}`);
  return { status: run.status, output: JSON.parse(run.stdout) as KubeconformOutput, stderr: run.stderr };
}

describe('kubeconform', { skip: kubeconformSkip }, () => {
  test('the tool and the schemas are installed', () => {
    assert.equal(kubeconformMissing, undefined, `${kubeconformMissing}: scripts/setup-kubeconform.sh installs them`);
  });

  test('every resource in deploy/k8s/ is valid against the strict schemas of each Kubernetes version, none skipped', () => {
    assert.ok(all('ServiceMonitor').length >= 2, 'the ServiceMonitors are among the resources');
    assert.ok(kubernetesVersions.length > 0, 'schemas of at least one Kubernetes version');
    const expected = resources.map((r) => `${r.file} ${r.kind}/${r.metadata.name}`).sort();
    for (const version of kubernetesVersions) {
      const { status, output, stderr } = kubeconform(K8S_DIR, version);
      const problems = output.resources.filter((r) => r.status !== 'statusValid').map((r) => `${r.kind}/${r.name}: ${r.status} ${r.msg}`);
      assert.deepEqual(problems, [], `Kubernetes ${version}`);
      assert.equal(status, 0, `kubeconform exit status (Kubernetes ${version}): ${stderr}`);
      assert.deepEqual(output.summary, { valid: expected.length, invalid: 0, errors: 0, skipped: 0 }, `Kubernetes ${version}`);
      const validated = output.resources.map((r) => `${r.filename.slice(K8S_DIR.length + 1)} ${r.kind}/${r.name}`).sort();
      assert.deepEqual(validated, expected, `Kubernetes ${version}: each resource validated once`);
    }
  });

  test('the schemas reject an unknown field, in a Deployment and in a ServiceMonitor', (t) => {
    // Without this a schema that allowed anything (or a ServiceMonitor validated against nothing)
    // would let the test above pass on any manifest.
    const dir = mkdtempSync(join(tmpdir(), 'deploy-k8s-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { file: _file, ...deployment } = structuredClone(server);
    (deployment.spec.template.spec.containers[0].readinessProbe?.grpc as Record<string, unknown>).servce = 'x';
    const { file: _file2, ...monitor } = structuredClone(get<ServiceMonitor>('ServiceMonitor', 'mlx-batch-server'));
    (monitor.spec.endpoints[0] as Record<string, unknown>).scrapeTimout = '10s';
    writeFileSync(join(dir, 'broken.yaml'), `${stringify(deployment)}---\n${stringify(monitor)}`);
    const { status, output } = kubeconform(dir, kubernetesVersions[0]);
    assert.notEqual(status, 0);
    assert.deepEqual(output.summary, { valid: 0, invalid: 2, errors: 0, skipped: 0 });
    const messages = output.resources.map((r) => r.msg).join('\n');
    assert.match(messages, /'servce' not allowed/);
    assert.match(messages, /'scrapeTimout' not allowed/);
  });
});

// --- The replicas ---------------------------------------------------------------------------------

describe('the replicas', () => {
  test('2 replicas, and the selector matches the pod template', () => {
    assert.equal(server.spec.replicas, 2);
    assert.ok(selects(server.spec.selector.matchLabels, server.spec.template.metadata.labels));
  });

  test('every flag in the container args is one of the CLI', () => {
    assert.ok(serverArgs.some((a) => a.startsWith('--')));
    assert.equal(parsedServerArgs.error, '', 'our CLI refuses the container args');
    assert.ok(parsedServerArgs.serve, 'the args run the server');
    // No positional arguments: every value follows its flag.
    for (let i = 0; i < serverArgs.length; i++) {
      if (!serverArgs[i].startsWith('--')) assert.ok(serverArgs[i - 1]?.startsWith('--'), `argument ${serverArgs[i]} follows a flag`);
    }
  });

  test('the probes ask the gRPC health service on the port and address the server listens on', () => {
    // A server bound to 127.0.0.1 (the default) cannot be reached by the kubelet or other pods.
    const { host, grpcHost, grpcPort, port: restPort } = serverFlags();
    assert.equal(grpcHost ?? host, '0.0.0.0', '--host (or --grpc-host) 0.0.0.0');
    assert.equal(host, '0.0.0.0', 'the REST port is reached from other pods too (HAProxy, Prometheus)');
    assert.equal(containerPort(serverContainer, 'grpc'), grpcPort, 'container port "grpc" is --grpc-port');
    assert.equal(containerPort(serverContainer, 'rest'), restPort, 'container port "rest" is --port');
    const { startupProbe, readinessProbe, livenessProbe } = serverContainer;
    for (const [name, probe] of Object.entries({ startupProbe, readinessProbe, livenessProbe })) {
      assert.ok(probe?.grpc, `${name} is a gRPC probe`);
      assert.equal(probe.grpc.port, grpcPort, `${name} asks --grpc-port`);
    }
    // The name the health service reports the service under is the proto's.
    assert.equal(readinessProbe?.grpc?.service, GenerationService.typeName);
    assert.equal(startupProbe?.grpc?.service, GenerationService.typeName);
    assert.ok([undefined, '', GenerationService.typeName].includes(livenessProbe?.grpc?.service));
    const window = (p: Probe | undefined) => (p?.failureThreshold ?? 3) * (p?.periodSeconds ?? 10);
    // An engine restart (a few seconds NOT_SERVING) must not get the container killed.
    assert.ok(window(livenessProbe) >= 60, `liveness tolerates ${window(livenessProbe)} s of NOT_SERVING, less than 60`);
    // The first start downloads the model before it is ready.
    assert.ok(window(startupProbe) >= 300, `the startup probe allows ${window(startupProbe)} s to load, less than 5 minutes`);
  });

  test('the termination grace period covers preStop, --shutdown-delay and --drain-timeout', () => {
    const { preStop } = serverContainer.lifecycle ?? {};
    const exec = preStop?.exec?.command;
    const preStopSeconds = preStop?.sleep?.seconds ?? (exec?.[0]?.endsWith('sleep') ? Number(exec[1]) : Number.NaN);
    assert.ok(preStopSeconds > 0, 'preStop sleeps');
    const { shutdownDelay, drainTimeout } = serverFlags();
    assert.ok(shutdownDelay > 0, '--shutdown-delay is set');
    assert.ok(serverArgs.includes('--drain-timeout') && drainTimeout > 0, '--drain-timeout is set');
    const grace = server.spec.template.spec.terminationGracePeriodSeconds ?? 30;
    // The margin: the cancelled requests' errors (1 s), the engine's stop and the exit.
    const MARGIN = 5;
    assert.ok(
      grace >= preStopSeconds + shutdownDelay + drainTimeout + MARGIN,
      `terminationGracePeriodSeconds ${grace} < preStop ${preStopSeconds} + shutdown delay ${shutdownDelay} + drain ${drainTimeout} + ${MARGIN}`,
    );
  });

  test('the memory limit holds the default model and the KV budgets the args allow', () => {
    const { kvBudgetBytes: kv, prefixCacheBytes: prefix } = engineOptions(serverFlags());
    const limit = byteSize(serverContainer.resources?.limits?.memory?.replace(/i$/, 'iB') ?? '0');
    const MODEL_AND_PROCESSES = 400 * 2 ** 20;
    assert.ok(limit >= MODEL_AND_PROCESSES + kv + prefix, `memory limit ${limit} < 400 MiB + KV ${kv} + prefix cache ${prefix}`);
    assert.equal(serverContainer.resources?.requests?.memory, serverContainer.resources?.limits?.memory);
    // The kernels' threads match the CPUs the container gets.
    assert.equal(serverFlags().threads, Number(serverContainer.resources?.limits?.cpu));
  });

  test('the Services and the ServiceMonitors select these pods and name their ports', () => {
    const podLabels = server.spec.template.metadata.labels;
    for (const name of ['mlx-batch-server', 'mlx-batch-server-replicas']) {
      const service = get<Service>('Service', name);
      assert.ok(selects(service.spec.selector, podLabels), `Service ${name} selects the replicas`);
      for (const port of service.spec.ports) portNumber(serverContainer, port.targetPort);
    }
    assert.equal(get<Service>('Service', 'mlx-batch-server-replicas').spec.clusterIP, 'None', 'headless');
    const haproxyLabels = haproxy.spec.template.metadata.labels;
    for (const name of ['mlx-batch-haproxy', 'mlx-batch-haproxy-metrics']) {
      const service = get<Service>('Service', name);
      assert.ok(selects(service.spec.selector, haproxyLabels), `Service ${name} selects HAProxy`);
      for (const port of service.spec.ports) portNumber(haproxyContainer, port.targetPort);
    }
    // Each ServiceMonitor selects exactly one Service (no pod scraped twice), and a port of it
    // that serves /metrics.
    const metricsPorts: Record<string, number> = {
      'mlx-batch-server': serverFlags().port,
      'mlx-batch-haproxy': Number(haproxyEnv().get('STATS_BIND')?.split(':').at(-1)),
    };
    for (const [name, metricsPort] of Object.entries(metricsPorts)) {
      const monitor = get<ServiceMonitor>('ServiceMonitor', name);
      const services = all('Service').filter((s) => selects(monitor.spec.selector.matchLabels, s.metadata.labels));
      assert.equal(services.length, 1, `ServiceMonitor ${name} selects one Service`);
      const service = services[0] as Service & Resource;
      const container = service.metadata.name.startsWith('mlx-batch-haproxy') ? haproxyContainer : serverContainer;
      for (const endpoint of monitor.spec.endpoints) {
        const port = service.spec.ports.find((p) => p.name === endpoint.port);
        assert.ok(port, `Service ${service.metadata.name} has the port ${endpoint.port}`);
        assert.equal(portNumber(container, port.targetPort), metricsPort, `ServiceMonitor ${name} scrapes the metrics port`);
        assert.equal(endpoint.path ?? '/metrics', '/metrics');
      }
    }
  });

  test('pod disruption budgets keep one replica (and one HAProxy) up', () => {
    const budgets = all('PodDisruptionBudget') as (Resource & {
      spec: { selector: { matchLabels: Labels }; maxUnavailable?: number; minAvailable?: number };
    })[];
    for (const deployment of [server, haproxy]) {
      const budget = budgets.find((b) => selects(b.spec.selector.matchLabels, deployment.spec.template.metadata.labels));
      assert.ok(budget, `a PodDisruptionBudget covers ${deployment.metadata.name}`);
      const down = budget.spec.maxUnavailable ?? deployment.spec.replicas - (budget.spec.minAvailable ?? 0);
      assert.ok(
        down >= 1 && down < deployment.spec.replicas,
        `${deployment.metadata.name}: ${down} of ${deployment.spec.replicas} may be down`,
      );
    }
  });
});

// --- HAProxy --------------------------------------------------------------------------------------

/** A config's sections: header line → its directives, comments and blank lines dropped, spaces collapsed. */
function sections(config: string): Map<string, string[]> {
  const result = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of config.split('\n')) {
    const line = raw.trim().replace(/\s+/g, ' ');
    if (line === '' || line.startsWith('#')) continue;
    if (!/^\s/.test(raw)) {
      current = [];
      assert.ok(!result.has(line), `one section ${line}`);
      result.set(line, current);
    } else {
      assert.ok(current, `${line} is inside a section`);
      current.push(line);
    }
  }
  return result;
}

const configMap = get<ConfigMap>('ConfigMap', 'mlx-batch-haproxy');
const k8sHaproxy = configMap.data['haproxy.cfg'];

/** The HAProxy container's environment as the kubelet builds it, in namespace `namespace`. */
function haproxyEnv(namespace = 'default'): Map<string, string> {
  const env = new Map<string, string>();
  for (const v of haproxyContainer.env ?? []) {
    if (v.valueFrom?.fieldRef) {
      assert.equal(v.valueFrom.fieldRef.fieldPath, 'metadata.namespace', `${v.name} comes from the namespace`);
      env.set(v.name, namespace);
    } else {
      // $(VAR) refers to a variable defined above it.
      env.set(
        v.name,
        (v.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name) => env.get(name) ?? whole),
      );
    }
  }
  return env;
}

describe('HAProxy', () => {
  test('the ConfigMap has the directives of deploy/haproxy/haproxy.cfg, but server-template lines in place of server lines', () => {
    const shipped = sections(SHIPPED_HAPROXY_CONFIG);
    const k8s = sections(k8sHaproxy);
    assert.deepEqual([...k8s.keys()], [...shipped.keys()], 'the same sections in the same order');
    const resolvers = [...k8s.keys()].filter((s) => s.startsWith('resolvers '));
    assert.equal(resolvers.length, 1, 'one resolvers section');
    const resolver = resolvers[0].split(' ')[1];
    for (const [header, lines] of shipped) {
      const k8sLines = k8s.get(header) ?? [];
      if (header === 'global') {
        // Kubernetes may add global settings (nbthread for the CPU limit) but not change one.
        const keyword = (l: string) => l.split(' ')[0];
        for (const line of lines) assert.ok(k8sLines.includes(line), `global has "${line}"`);
        const extra = k8sLines.filter((l) => !lines.includes(l));
        assert.deepEqual(
          extra.filter((l) => lines.some((s) => keyword(s) === keyword(l))),
          [],
          'global changes none of haproxy.cfg',
        );
        continue;
      }
      const servers = lines.filter((l) => l.startsWith('server '));
      const templates = k8sLines.filter((l) => l.startsWith('server-template '));
      assert.deepEqual(
        k8sLines.filter((l) => !l.startsWith('server-template ')),
        lines.filter((l) => !l.startsWith('server ')),
        `${header}: the same directives`,
      );
      if (!header.startsWith('backend ')) {
        assert.deepEqual(templates, [], `${header} has no servers`);
        continue;
      }
      assert.ok(servers.length > 0, `haproxy.cfg's ${header} has servers`);
      assert.equal(templates.length, 1, `${header}: one server-template`);
      // server-template <prefix> <range> "<address>" params: the slots are named as haproxy.cfg's
      // servers (r1, r2, ...), the address is the variable of the same port kind (REST / GRPC).
      const [, prefix, range, address, ...params] = templates[0].split(' ');
      for (const s of servers) assert.match(s.split(' ')[1], new RegExp(`^${prefix}\\d+$`), `${header}: slot names`);
      assert.ok(Number(range.split('-').at(-1)) >= servers.length, `${header}: at least as many slots as haproxy.cfg has servers`);
      const kind = (a: string) => /^"\$\{[A-Z0-9_]*_(REST|GRPC)\}"$/.exec(a)?.[1];
      assert.ok(kind(address), `${header}: address ${address} is "\${..._REST}" or "\${..._GRPC}"`);
      for (const s of servers) assert.equal(kind(s.split(' ')[2]), kind(address), `${header}: the same port as haproxy.cfg's servers`);
      assert.equal(params[params.indexOf('resolvers') + 1], resolver, `${header}: resolved by the resolvers section`);
      assert.ok(params.includes('init-addr'), `${header}: starts before the name resolves`);
    }
  });

  test('the Deployment sets every variable the config reads, to the ports the containers use', () => {
    const env = haproxyEnv('ns1');
    const used = new Set([...k8sHaproxy.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]));
    assert.deepEqual(
      [...used].filter((v) => !env.has(v)),
      [],
      'variables the config reads that the Deployment does not set',
    );
    for (const [bind, portName] of [
      ['REST_BIND', 'rest'],
      ['GRPC_BIND', 'grpc'],
      ['STATS_BIND', 'stats'],
    ]) {
      assert.equal(
        Number(env.get(bind)?.split(':').at(-1)),
        containerPort(haproxyContainer, portName),
        `${bind} is container port ${portName}`,
      );
    }
    // The replicas' addresses: the headless Service's full name in the pod's namespace (HAProxy's
    // resolver applies no search domain), with the replicas' ports.
    const headless = get<Service>('Service', 'mlx-batch-server-replicas');
    assert.equal(headless.spec.clusterIP, 'None');
    for (const [variable, portName] of [
      ['REPLICAS_REST', 'rest'],
      ['REPLICAS_GRPC', 'grpc'],
    ]) {
      assert.ok(used.has(variable), `the config reads ${variable}`);
      assert.equal(
        env.get(variable),
        `mlx-batch-server-replicas.ns1.svc.cluster.local:${containerPort(serverContainer, portName)}`,
        variable,
      );
    }
    // As many threads as CPUs the container may use.
    const nbthread = sections(k8sHaproxy)
      .get('global')
      ?.find((l) => l.startsWith('nbthread '));
    assert.equal(Number(nbthread?.split(' ')[1]), Number(haproxyContainer.resources?.limits?.cpu), 'nbthread is the CPU limit');
    // HAProxy reads the ConfigMap where it is mounted.
    const command = [...(haproxyContainer.command ?? []), ...(haproxyContainer.args ?? [])];
    const configPath = command.includes('-f') ? command[command.indexOf('-f') + 1] : undefined;
    const volume = haproxy.spec.template.spec.volumes?.find((v) => v.configMap?.name === configMap.metadata.name);
    assert.ok(volume, 'the ConfigMap is a volume');
    const mount = haproxyContainer.volumeMounts?.find((m) => m.name === volume.name);
    assert.equal(configPath, `${mount?.mountPath}/haproxy.cfg`, 'haproxy -f reads the mounted ConfigMap');
  });

  const skip = haproxySkip();
  test('haproxy -c accepts the ConfigMap with the Deployment environment', { skip }, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'deploy-k8s-haproxy-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, k8sHaproxy);
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...Object.fromEntries(haproxyEnv()) };
    const check = spawnSync(HAPROXY as string, ['-c', '-f', file], { encoding: 'utf8', env });
    assert.equal(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
    // The same config without the replicas' addresses is refused: the check does read them.
    const missing = spawnSync(HAPROXY as string, ['-c', '-f', file], { encoding: 'utf8', env: { ...env, REPLICAS_GRPC: '' } });
    assert.notEqual(missing.status, 0, 'haproxy -c refuses an empty server-template address');
  });

  test('HAProxy fills its server slots from DNS, health-checks them and follows a replica leaving', { skip }, async (t) => {
    // The cluster, reduced to what the config sees of it: a DNS server answering the headless
    // Service's name with the replicas' addresses, and the replicas: the real executable on a
    // tiny model, at 127.0.0.2 and 127.0.0.3 on the same two ports (as pods are).
    const fqdn = 'mlx-batch-server-replicas.ns1.svc.cluster.local';
    let addresses = ['127.0.0.2', '127.0.0.3'];
    const dns = await startDns(fqdn, () => addresses);
    t.after(() => dns.close());
    const modelDir = writeTinyModel(TEST_MODEL_SPEC);
    t.after(() => rmSync(modelDir, { recursive: true, force: true }));
    const [restPort, grpcPort] = await freePortsOn(addresses, 2);
    const replicas = new Map<string, CliProcess>();
    t.after(async () => {
      for (const replica of replicas.values()) {
        replica.child.kill('SIGKILL');
        await replica.exited;
      }
    });
    for (const host of addresses) {
      replicas.set(host, await launchReplica(modelDir, host, restPort, grpcPort));
    }
    await Promise.all([...replicas.values()].map((r) => waitForHealth(r.api)));
    // The pod's resolv.conf becomes this DNS server; a replica that leaves the answer is dropped
    // after 1 s instead of 30 (the slot-keeping is HAProxy's, not under test).
    const config = k8sHaproxy
      .replace(/^(\s*)parse-resolv-conf$/m, `$1nameserver test 127.0.0.1:${dns.port}`)
      .replace(/^(\s*)hold obsolete \d+s$/m, '$1hold obsolete 1s');
    assert.equal((config.match(/nameserver test|hold obsolete 1s/g) ?? []).length, 2, 'the resolvers section was adapted');
    const [rest, grpc, stats] = [await freePort(), await freePort(), await freePort()];
    const env = {
      ...Object.fromEntries(haproxyEnv('ns1')),
      REST_BIND: `127.0.0.1:${rest}`,
      GRPC_BIND: `127.0.0.1:${grpc}`,
      STATS_BIND: `127.0.0.1:${stats}`,
      REPLICAS_REST: `${fqdn}:${restPort}`,
      REPLICAS_GRPC: `${fqdn}:${grpcPort}`,
    };
    const balancer = startHaproxyProcess(config, env, stats);
    t.after(() => balancer.close());

    /** HAProxy's stats rows of the server-template slots (r1, r2, …), every backend. */
    const slotRows = async () => (await balancer.stats()).filter((r) => /^r\d+$/.test(r.svname));
    /** Per backend, how many slots are UP and how many in maintenance (no address). */
    const pool = async () => {
      const result = new Map<string, { up: number; maint: number }>();
      for (const s of await slotRows()) {
        const entry = result.get(s.pxname) ?? { up: 0, maint: 0 };
        if (s.status === 'UP') entry.up++;
        if (s.status.startsWith('MAINT')) entry.maint++;
        result.set(s.pxname, entry);
      }
      return result;
    };
    const BACKENDS = ['rest_affinity', 'rest_spread', 'grpc_affinity', 'grpc_spread'];
    const [, from, to] = /server-template \S+ (\d+)-(\d+) /.exec(k8sHaproxy) ?? [];
    const slots = Number(to) - Number(from) + 1;
    let seen = '';
    const poolIs = async (up: number) => {
      const p = await pool().catch(() => new Map<string, { up: number; maint: number }>());
      seen = JSON.stringify(Object.fromEntries(p));
      return BACKENDS.every((b) => {
        const e = p.get(b);
        return e !== undefined && e.up === up && e.maint === slots - up;
      });
    };
    await until(
      'every backend has the two replicas UP and its other slots in maintenance',
      () => poolIs(2),
      balancer,
      () => seen,
    );

    // Which replica served a request, from both sides: HAProxy's stats count it on exactly one
    // slot of the backend (its stot rises by one), and exactly one replica's own /metrics count
    // one more finished request.
    const hosts = [...replicas.keys()];
    const finished = () =>
      Promise.all(hosts.map(async (h) => metricValue(await scrape(`http://${h}:${restPort}`), 'vllm:request_success_total')));
    const servedBy = async (backend: string, call: () => Promise<unknown>) => {
      const sent = async () => new Map((await slotRows()).filter((r) => r.pxname === backend).map((r) => [r.svname, Number(r.stot)]));
      const [sentBefore, finishedBefore] = [await sent(), await finished()];
      await call();
      const rose = [...(await sent())].map(([slot, n]) => [slot, n - (sentBefore.get(slot) ?? 0)] as const).filter(([, d]) => d !== 0);
      assert.deepEqual(
        rose.map(([, d]) => d),
        [1],
        `HAProxy sends the request to one ${backend} slot: ${rose.map(([slot, d]) => `${slot} +${d}`)}`,
      );
      let gained: number[] = [];
      await waitUntil('a replica counts the request', async () => {
        gained = (await finished()).map((n, i) => n - finishedBefore[i]);
        return gained.some((n) => n > 0);
      });
      assert.deepEqual([...gained].sort(), [0, 1], `requests each replica finished: ${gained}`);
      return hosts[gained.indexOf(1)];
    };
    const chat = (key: string) =>
      servedBy('rest_affinity', async () => {
        const res = await fetch(`http://127.0.0.1:${rest}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, prompt_cache_key: key }),
        });
        assert.equal(res.status, 200, await res.clone().text());
        assert.equal(((await res.json()) as { object: string }).object, 'chat.completion');
      });
    // gRPC goes to the replicas over HTTP/2 (h2c), keyed on the metadata.
    const client = createClient(GenerationService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpc}` }));
    const complete = (key: string) =>
      servedBy('grpc_affinity', () =>
        client.complete(
          { prompt: { input: { case: 'text', value: 'hi' } }, sampling: { maxTokens: 2 } },
          { headers: { 'x-prompt-cache-key': key } },
        ),
      );

    // Affinity through the slots: one key, one replica; many keys, both replicas.
    const first = await chat('conversation-1');
    assert.ok(addresses.includes(first), `REST reached a replica: ${first}`);
    for (let i = 0; i < 5; i++) assert.equal(await chat('conversation-1'), first, 'a key stays on its replica');
    const byKey: string[] = [];
    for (let i = 0; i < 24; i++) byKey.push(await chat(`conversation-${i}`));
    assert.deepEqual([...new Set(byKey)].sort(), ['127.0.0.2', '127.0.0.3'], 'keys spread over both replicas');
    const grpcReplica = await complete('conversation-1');
    assert.ok(addresses.includes(grpcReplica), `gRPC reached a replica: ${grpcReplica}`);
    assert.equal(await complete('conversation-1'), grpcReplica, 'a gRPC key stays on its replica');

    // The replica at 127.0.0.3 leaves the DNS answer (scaled down, or not ready): still healthy,
    // it leaves the pool because DNS no longer lists it.
    addresses = ['127.0.0.2'];
    await until(
      'every backend has one replica UP and its other slots in maintenance',
      () => poolIs(1),
      balancer,
      () => seen,
    );
    const after: string[] = [];
    for (let i = 0; i < 8; i++) after.push(await chat(`conversation-${i}`));
    assert.deepEqual([...new Set(after)], ['127.0.0.2']);
  });
});

// --- A stand-in for the cluster's DNS, HAProxy on the ConfigMap's config ------------------------

/**
 * `count` distinct ports that every one of `hosts` can listen on (as pods' ports are the same on
 * each): helpers/haproxy.ts' freePort finds one free on 127.0.0.1, and each host is tried on it.
 */
async function freePortsOn(hosts: string[], count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    const free = await Promise.all(
      hosts.map(async (host) => {
        const probe = createNetServer();
        try {
          await once(probe.listen(port, host), 'listening');
          return true;
        } catch {
          return false;
        } finally {
          await new Promise((closed) => probe.close(closed));
        }
      }),
    );
    if (free.every(Boolean) && !ports.includes(port)) ports.push(port);
  }
  return ports;
}

/** A DNS server (UDP) answering A queries for `name` with `addresses()`; anything else gets no answer records. */
async function startDns(name: string, addresses: () => string[]): Promise<{ port: number; close(): void }> {
  const socket = createSocket('udp4');
  socket.on('message', (query, peer) => {
    // The question: length-prefixed labels up to a zero byte, then type and class.
    const labels: string[] = [];
    let at = 12;
    while (query[at] !== 0) {
      labels.push(query.toString('latin1', at + 1, at + 1 + query[at]));
      at += query[at] + 1;
    }
    const questionEnd = at + 5;
    const type = query.readUInt16BE(at + 1);
    const known = labels.join('.').toLowerCase() === name;
    const ips = known && type === 1 ? addresses() : [];
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2); // the id
    header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | (known ? 0 : 3), 2); // response, authoritative, RD echoed, NXDOMAIN if unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(ips.length, 6);
    const answers = ips.map((ip) => {
      const record = Buffer.alloc(16);
      record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      record.writeUInt16BE(1, 2); // A
      record.writeUInt16BE(1, 4); // IN
      record.writeUInt32BE(1, 6); // TTL 1 s
      record.writeUInt16BE(4, 10);
      ip.split('.').forEach((octet, i) => record.writeUInt8(Number(octet), 12 + i));
      return record;
    });
    socket.send(Buffer.concat([header, query.subarray(12, questionEnd), ...answers]), peer.port, peer.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { port: socket.address().port, close: () => socket.close() };
}

interface BalancerProcess extends HaproxyProcess {
  /** HAProxy's stats CSV, one row per frontend, backend and server slot. */
  stats(): Promise<StatsRow[]>;
}

/**
 * HAProxy on `config`, its stats page on `statsPort` (the config's STATS_BIND). Not
 * helpers/haproxy.ts' startHaproxy: that one fills REPLICA1_*, REPLICA2_* and waits for two fixed
 * servers per backend, where this config has server-template slots filled from DNS.
 */
function startHaproxyProcess(config: string, env: Record<string, string>, statsPort: number): BalancerProcess {
  return { ...spawnHaproxy(config, env), stats: () => haproxyStats(`http://127.0.0.1:${statsPort}`) };
}

/** Polls `condition` every 100 ms for up to 20 s; fails early if HAProxy exits. */
async function until(what: string, condition: () => Promise<boolean>, balancer: BalancerProcess, state: () => string): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!(await condition())) {
    const exited = balancer.exited();
    if (exited) assert.fail(`${what}: ${exited}`);
    if (performance.now() > deadline) assert.fail(`timed out waiting until ${what}; last seen: ${state()}`);
    await sleep(100);
  }
}
