// The deployment files cannot be run here (no image pulls, no cluster, no helm), so every fact
// they state about peergate is checked against peergate itself: policies pass the schema,
// ports and probe URLs match the policy and the ops server's routes, commands match the CLI,
// paths match what the image or the chart puts where.
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { parsePolicy, formatError } from '../../../src/policy/load.js';
import type { Policy } from '../../../src/policy/schema.js';
import { renderTemplate } from './helm-render.js';
import { WORKER_MALLOC_ARENA_MAX } from '../../../src/app/workers/node-flags.js';
import { PRIMARY_NODE_FLAGS } from '../../../src/app/heap.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const VERSION = (JSON.parse(read('package.json')) as { version: string }).version;

function policyOf(text: string, file: string, env: NodeJS.ProcessEnv = {}): Policy {
  const r = parsePolicy(text, file, { env });
  if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
  return r.policy;
}

/** `port/proto` for every listener and the ops port. */
function policyPorts(p: Policy): string[] {
  const ports = p.listen.map((l) => `${l.port}/${l.transport === 'udp' ? 'udp' : 'tcp'}`);
  return [...new Set([...ports, `${p.ops.port}/tcp`])].sort();
}

/** The routes the ops server answers (src/ops/server.ts), read from its source. */
const OPS_ROUTES = [...read('src/ops/server.ts').matchAll(/app\.get\('([^']+)'/g)].map((m) => m[1]);

/** The commands `peergate` knows (src/cli/main.ts). */
const CLI_COMMANDS = [...read('src/cli/main.ts').matchAll(/^\s+(\w+): \{ summary:/gm)].map((m) => m[1]);

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function dockerfile(text: string): Array<{ op: string; args: string; stage: number }> {
  const out: Array<{ op: string; args: string; stage: number }> = [];
  let stage = -1;
  const joined = text.replace(/\\\n/g, ' ');
  for (const line of joined.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [op, ...rest] = t.split(/\s+/);
    if (op!.toUpperCase() === 'FROM') stage++;
    out.push({ op: op!.toUpperCase(), args: rest.join(' '), stage });
  }
  return out;
}

describe('Dockerfile', () => {
  const ins = dockerfile(read('Dockerfile'));
  const last = Math.max(...ins.map((i) => i.stage));
  const final = ins.filter((i) => i.stage === last);
  const imagePolicyPath = final.find((i) => i.op === 'COPY' && i.args.startsWith('deploy/container/policy.yaml'))!.args.split(' ')[1]!;
  const policy = policyOf(read('deploy/container/policy.yaml'), '/etc/peergate/policy.yaml');

  it('is multi-stage and runs as a non-root user', () => {
    expect(last).toBeGreaterThanOrEqual(1);
    const user = final.filter((i) => i.op === 'USER').pop()!.args;
    expect(user.split(':')[0]).not.toMatch(/^(0|root)$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
  });

  it('runs bin/peergate.js start with the policy it copies, and that policy is valid', () => {
    const entry = JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    const cmd = JSON.parse(final.find((i) => i.op === 'CMD')!.args) as string[];
    const binDest = final.find((i) => i.op === 'COPY' && i.args.startsWith('bin/peergate.js'))!.args.split(' ')[1]!;
    const workdir = final.find((i) => i.op === 'WORKDIR')!.args;
    expect(entry).toEqual(['node', ...PRIMARY_NODE_FLAGS, join(workdir, binDest)]);
    expect(CLI_COMMANDS).toContain(cmd[0]);
    expect(cmd).toEqual(['start', '--policy', imagePolicyPath]);
    // The compiled tree sits where bin/peergate.js looks for it (../dist/cli/main.js).
    const dist = final.find((i) => i.op === 'COPY' && i.args.includes('/src/dist'))!.args.split(' ').pop()!;
    expect(join(workdir, dist)).toBe(join(workdir, 'bin', '..', 'dist'));
    // The addon where src/sbc/identity/sigverify.ts loads it from dist/sbc/identity/.
    const addon = final.find((i) => i.op === 'COPY' && i.args.includes('sigverify.node'))!.args.split(' ').pop()!;
    expect(join(workdir, 'dist', 'sbc', 'identity', '../../../native/build/Release/sigverify.node')).toBe(join(workdir, addon));
    expect(read('src/sbc/identity/sigverify.ts')).toContain("'../../../native/build/Release/sigverify.node'");
    // The memory reducer where src/app/memory-reducer.ts loads it from dist/app/.
    const reducer = final.find((i) => i.op === 'COPY' && i.args.includes('memory.node'))!.args.split(' ').pop()!;
    expect(join(workdir, 'dist', 'app', '../../native/build/Release/memory.node')).toBe(join(workdir, reducer));
    expect(read('src/app/memory-reducer.ts')).toContain("'../../native/build/Release/memory.node'");
  });

  it('copies only files that exist in the build context and are not excluded by .dockerignore', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter(Boolean);
    for (const i of ins.filter((x) => x.op === 'COPY' && !x.args.startsWith('--from'))) {
      const srcs = i.args.split(' ').slice(0, -1);
      for (const s of srcs) {
        expect(existsSync(join(ROOT, s)), s).toBe(true);
        expect(ignored.some((g) => s === g || s.startsWith(`${g}/`)), `${s} is in .dockerignore`).toBe(false);
      }
    }
  });

  it('limits glibc to two malloc arenas, as the systemd unit does (the primary reads it at start)', () => {
    // The value the workers get when the operator sets none (src/app/workers/node-flags.ts).
    const env = final.filter((i) => i.op === 'ENV').map((i) => i.args);
    expect(env).toContain(`MALLOC_ARENA_MAX=${WORKER_MALLOC_ARENA_MAX}`);
    expect(read('deploy/peergate.service').split('\n')).toContain(`Environment=MALLOC_ARENA_MAX=${WORKER_MALLOC_ARENA_MAX}`);
  });

  it('exposes exactly the policy ports and health-checks /health on the ops port', () => {
    const exposed = final.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(' ')).sort();
    expect(exposed).toEqual(policyPorts(policy));
    const hc = final.find((i) => i.op === 'HEALTHCHECK')!.args;
    const url = /http:\/\/127\.0\.0\.1:(\d+)(\/\w+)/.exec(hc)!;
    expect(Number(url[1])).toBe(policy.ops.port);
    expect(url[2]).toBe('/health');
    expect(OPS_ROUTES).toContain('/health');
    // The health check reaches the ops server only if it listens beyond the container's loopback too.
    expect(policy.ops.address).toBe('0.0.0.0');
  });
});

describe('compose file', () => {
  const compose = parse(read('deploy/compose/compose.yaml')) as { services: Record<string, any>; secrets: Record<string, { file: string }> };
  const s = compose.services;
  const pg = s.peergate;
  const mount = (pg.volumes as string[]).map((v) => v.split(':')).find((v) => v[1] === '/etc/peergate/policy.yaml')!;
  const policy = policyOf(read(join('deploy/compose', mount[0]!)), '/etc/peergate/policy.yaml');

  it('wires peergate, rtpengine, Redis, Prometheus and Grafana', () => {
    expect(Object.keys(s).sort()).toEqual(['grafana', 'peergate', 'prometheus', 'redis', 'rtpengine']);
    expect(pg.build).toEqual({ context: '../..', dockerfile: 'Dockerfile' });
    expect(existsSync(join(ROOT, 'deploy/compose', pg.build.context, pg.build.dockerfile))).toBe(true);
    expect(pg.image).toBe(`peergate:${VERSION}`);
    expect(pg.command[0]).toBe('start');
    expect(pg.command.slice(1)).toEqual(['--policy', '/etc/peergate/policy.yaml']);
  });

  it("points the policy at the compose services and reads both secrets from compose's files", () => {
    expect(new URL(policy.store.redis!.url!).hostname).toBe('redis');
    const rtp = policy.media.rtpengine as Array<{ address: string }>;
    expect(rtp.map((r) => r.address)).toEqual(['rtpengine:2223']);
    expect(s.rtpengine.command.join(' ')).toContain('--listen-ng=0.0.0.0:2223');
    const secretFile = (name: string) => `/run/secrets/${name}`;
    expect(policy.store.redis!.password_file).toBe(secretFile('redis-password'));
    expect(policy.ops.admin_token_file).toBe(secretFile('admin-token'));
    expect(pg.secrets.sort()).toEqual(['admin-token', 'redis-password']);
    for (const name of pg.secrets as string[]) expect(compose.secrets[name]).toBeDefined();
    expect(s.redis.command.join(' ')).toContain('/run/secrets/redis-password');
  });

  it('publishes the policy ports, and Prometheus scrapes the ops port', () => {
    const published = (pg.ports as string[]).map((p) => p.split(':').pop()!).sort();
    expect(published).toEqual(policyPorts(policy));
    const prom = parse(read('deploy/compose/prometheus.yml')) as any;
    const job = prom.scrape_configs.find((j: any) => j.job_name === 'peergate');
    expect(job.metrics_path).toBe('/metrics');
    expect(OPS_ROUTES).toContain('/metrics');
    expect(job.static_configs[0].targets).toEqual([`peergate:${policy.ops.port}`]);
    expect(policy.ops.address).toBe('0.0.0.0');
  });

  it("provisions Grafana with the Prometheus service and the repository's dashboards directory", () => {
    const ds = parse(read('deploy/compose/grafana/provisioning.yaml')) as any;
    expect(ds.datasources[0].url).toBe('http://prometheus:9090');
    const dashboards = (s.grafana.volumes as string[]).find((v) => v.startsWith('../grafana:'))!;
    const provider = parse(read('deploy/compose/grafana/dashboards.yaml')) as any;
    expect(dashboards.split(':')[1]).toBe(provider.providers[0].options.path);
  });
});

describe('Helm chart', () => {
  const dir = join(ROOT, 'deploy/helm/peergate');
  const chart = parse(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
  const values = parse(readFileSync(join(dir, 'values.yaml'), 'utf8')) as any;
  const ctx = { Values: values, Release: { Name: 'edge', Namespace: 'voice' }, Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion } };
  const docs = readdirSync(join(dir, 'templates')).flatMap((f) => {
    const text = renderTemplate(readFileSync(join(dir, 'templates', f), 'utf8'), ctx);
    return parseAllDocuments(text).map((d) => {
      expect(d.errors, `${f}: ${d.errors.map((e) => e.message).join('; ')}`).toEqual([]);
      return d.toJS() as any;
    }).filter(Boolean);
  });
  const of = (kind: string) => docs.filter((d) => d.kind === kind);
  const deployment = of('Deployment')[0];
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const configMap = of('ConfigMap')[0];
  const policy = policyOf(configMap.data['policy.yaml'], '/etc/peergate/policy/policy.yaml');
  const mountOf = (path: string) => container.volumeMounts.find((m: any) => path.startsWith(`${m.mountPath}/`));
  const volume = (name: string) => pod.volumes.find((v: any) => v.name === name);

  it('renders every kind the chart promises', () => {
    expect(chart.appVersion).toBe(VERSION);
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'Service', 'ServiceMonitor']);
  });

  it('runs `peergate start` on the policy mounted from the ConfigMap, a valid policy', () => {
    expect(container.image).toBe(`peergate:${VERSION}`);
    expect(CLI_COMMANDS).toContain(container.args[0]);
    const policyPath = container.args[container.args.indexOf('--policy') + 1];
    const m = mountOf(policyPath);
    expect(volume(m.name).configMap.name).toBe(configMap.metadata.name);
    expect(policyPath.slice(m.mountPath.length + 1)).toBe('policy.yaml');
  });

  it('takes TLS material and the admin token from Secrets, where the policy expects them', () => {
    for (const f of [policy.tls!.certificate, policy.tls!.key, ...policy.tls!.client_cas]) {
      const m = mountOf(f);
      expect(m, f).toBeDefined();
      expect(volume(m.name).secret.secretName).toBe(values.tls.secretName);
    }
    const tokenMount = mountOf(policy.ops.admin_token_file!);
    const tokenVolume = volume(tokenMount.name).secret;
    expect(tokenVolume.secretName).toBe(values.adminToken.secretName);
    expect(tokenVolume.items[0].path).toBe(policy.ops.admin_token_file!.slice(tokenMount.mountPath.length + 1));
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
  });

  it('container and Service ports are the policy ports; probes hit /health and /ready on the ops port', () => {
    const containerPorts = container.ports.map((p: any) => `${p.containerPort}/${p.protocol.toLowerCase()}`).sort();
    expect(containerPorts).toEqual(policyPorts(policy));
    const byName = new Map(container.ports.map((p: any) => [p.name, p]));
    for (const svc of of('Service')) {
      for (const p of svc.spec.ports) {
        const target = byName.get(p.targetPort) as any;
        expect(target, `${svc.metadata.name} ${p.name}`).toBeDefined();
        expect(p.protocol).toBe(target.protocol);
        expect(p.port).toBe(target.containerPort);
      }
    }
    const metrics = byName.get('metrics') as any;
    expect(metrics.containerPort).toBe(policy.ops.port);
    expect(policy.ops.address).toBe('0.0.0.0');
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(container[probe].httpGet.port).toBe('metrics');
      expect(OPS_ROUTES).toContain(container[probe].httpGet.path);
    }
    expect(container.livenessProbe.httpGet.path).toBe('/health');
    expect(container.readinessProbe.httpGet.path).toBe('/ready');
  });

  it('drains on stop: preStop wait, then SIGTERM, within the grace period; a PDB keeps pods up', () => {
    const preStop = container.lifecycle.preStop.exec.command as string[];
    expect(preStop.join(' ')).toContain(`${values.drain.preStopSeconds} * 1000`);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(values.drain.preStopSeconds + 30);
    const pdb = of('PodDisruptionBudget')[0];
    expect(pdb.spec.minAvailable).toBeGreaterThanOrEqual(1);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) expect(deployment.spec.template.metadata.labels[k]).toBe(v);
  });

  it('ServiceMonitor scrapes /metrics through the ops Service port', () => {
    const sm = of('ServiceMonitor')[0];
    const ops = of('Service').find((x) => Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => x.metadata.labels[k] === v));
    expect(ops).toBeDefined();
    expect(ops.spec.ports.map((p: any) => p.name)).toContain(sm.spec.endpoints[0].port);
    expect(sm.spec.endpoints[0].path).toBe('/metrics');
    expect(OPS_ROUTES).toContain('/metrics');
  });

  it('with TLS and the ServiceMonitor disabled, the TLS port, volume and ServiceMonitor go away', () => {
    const off = { ...ctx, Values: { ...values, tls: { ...values.tls, enabled: false }, serviceMonitor: { ...values.serviceMonitor, enabled: false } } };
    const rendered = readdirSync(join(dir, 'templates')).map((f) => renderTemplate(readFileSync(join(dir, 'templates', f), 'utf8'), off)).join('\n---\n');
    const all = parseAllDocuments(rendered).map((d) => d.toJS() as any).filter(Boolean);
    expect(all.some((d) => d.kind === 'ServiceMonitor')).toBe(false);
    const c = all.find((d) => d.kind === 'Deployment').spec.template.spec;
    expect(c.containers[0].ports.map((p: any) => p.name)).not.toContain('sip-tls');
    expect(c.volumes.map((v: any) => v.name)).not.toContain('tls');
  });
});
