// Helpers for engine integration tests: an in-process engine on free ports, drachtio-srf test
// apps (test/fixtures/apps) as child processes, and a reader for their JSON-line events.
import { join } from 'node:path';
import { startEngine, type Engine, type EngineOptions } from '../../src/engine/engine.js';
import { afterEach } from 'vitest';
import { freePort, startProcess, stopAll, waitFor, type Proc } from './procs.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const APPS = join(ROOT, 'test', 'fixtures', 'apps');
export const SIPP_DIR = join(ROOT, 'test', 'fixtures', 'sipp');
export const SECRET = 'cymru';

const runningEngines = new Set<Engine>();

/** Engine on 127.0.0.1 with UDP+TCP on one free port and the wire server on another. */
export async function startTestEngine(extra: Partial<EngineOptions> = {}): Promise<Engine & { sipPort: number }> {
  const sipPort = await freePort();
  const wirePort = await freePort();
  const e = await startEngine({
    contacts: [`sip:127.0.0.1:${sipPort};transport=udp,tcp`],
    wire: { address: '127.0.0.1', port: wirePort, secret: SECRET },
    ...extra,
  });
  runningEngines.add(e);
  return Object.assign(e, { sipPort });
}

/** After each test of the calling file: stop started processes (by PID), close `peers`, then
 *  close every engine startTestEngine started. Returns `peers` for the tests to fill. */
export function cleanUpAfterEach<P extends { close(): void }>(peers: P[] = []): P[] {
  afterEach(async () => {
    await stopAll();
    for (const p of peers) p.close();
    peers.length = 0;
    for (const e of runningEngines) await e.close();
    runningEngines.clear();
  });
  return peers;
}

export interface AppProc extends Proc {
  events(): Array<Record<string, unknown>>;
  waitEvent(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
}

/** Start a fixture app (e.g. 'uas.mjs') connected to the engine's wire port. */
export function startApp(name: string, wirePort: number, env: Record<string, string> = {}): AppProc {
  const p = startProcess(process.execPath, [join(APPS, name)], {
    cwd: ROOT, env: { ...process.env, WIRE_PORT: String(wirePort), WIRE_SECRET: SECRET, ...env },
  });
  const events = () => p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => {
    try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; }
  });
  return Object.assign(p, {
    events,
    waitEvent: (pred: (e: Record<string, unknown>) => boolean, timeoutMs = 10_000, what = 'app event') =>
      waitFor(() => events().find(pred), timeoutMs, 25, what).then((e) => e!, (err: Error) => {
        throw new Error(`${err.message}\napp output:\n${p.output()}`);
      }),
  });
}

/** Start an app and wait until it authenticated and its routes are registered. */
export async function startConnectedApp(name: string, engine: Engine, env: Record<string, string> = {}, routes: string[] = []): Promise<AppProc> {
  const app = startApp(name, engine.wirePort, env);
  await app.waitEvent((e) => e.event === 'connect', 15_000, `${name} connect`);
  for (const r of routes) await waitFor(() => engine.wire.hasRoute(r), 5000, 25, `route ${r}`);
  return app;
}
