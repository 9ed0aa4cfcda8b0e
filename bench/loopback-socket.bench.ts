// What the engine ↔ worker wire would save on a Unix socket instead of loopback TCP: one
// process, a client writes frames of `--size` bytes to a server that echoes them (50 in flight),
// `--messages` round trips per round, TCP and Unix alternated for `--rounds` pairs. Prints the
// CPU µs per round trip (user + system, both ends: they share the process) and the median ratio.
// drachtio-srf connects with net.connect({ port, host }) only, so the worker side could not use
// a path without changing the package: this measures whether it would be worth asking.
//
//   npx tsx bench/loopback-socket.bench.ts [--rounds 5] [--messages 100000] [--size 600]
import net from 'node:net';
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: {
  rounds: { type: 'string', default: '5' }, messages: { type: 'string', default: '100000' }, size: { type: 'string', default: '600' },
} });
const ROUNDS = Number(values.rounds), N = Number(values.messages), SIZE = Number(values.size);
const frame = Buffer.alloc(SIZE, 97);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };

interface Result { cpuUs: number; sysUs: number }

async function run(listen: (s: net.Server) => void, connect: (s: net.Server) => net.NetConnectOpts): Promise<Result> {
  const server = net.createServer((s) => { s.setNoDelay(true); s.on('data', (d) => s.write(d)); });
  await new Promise<void>((r) => { server.once('listening', r); listen(server); });
  const c = net.connect(connect(server));
  c.setNoDelay(true);
  await new Promise((r) => c.once('connect', r));
  const t0 = process.cpuUsage();
  let got = 0, sent = 0;
  await new Promise<void>((done) => {
    c.on('data', (d) => {
      got += d.length;
      if (sent < N) { c.write(frame); sent++; }
      if (got >= N * SIZE) done();
    });
    for (let i = 0; i < 50; i++) { c.write(frame); sent++; }
  });
  const cpu = process.cpuUsage(t0);
  c.destroy();
  await new Promise((r) => server.close(r));
  return { cpuUs: (cpu.user + cpu.system) / N, sysUs: cpu.system / N };
}

const dir = mkdtempSync(join(tmpdir(), 'peergate-sock-'));
const path = join(dir, 'wire.sock');
const tcp: Result[] = [], unix: Result[] = [];
for (let i = 0; i < ROUNDS; i++) {
  tcp.push(await run((s) => s.listen(0, '127.0.0.1'), (s) => ({ host: '127.0.0.1', port: (s.address() as net.AddressInfo).port })));
  rmSync(path, { force: true });
  unix.push(await run((s) => s.listen(path), () => ({ path })));
  console.log(`pair ${i + 1}: tcp ${tcp[i]!.cpuUs.toFixed(2)} µs (system ${tcp[i]!.sysUs.toFixed(2)}), unix ${unix[i]!.cpuUs.toFixed(2)} µs (system ${unix[i]!.sysUs.toFixed(2)}) per round trip of ${SIZE} B`);
}
rmSync(dir, { recursive: true, force: true });
const ratios = tcp.map((t, i) => unix[i]!.cpuUs / t.cpuUs);
console.log(`median CPU µs per round trip: tcp ${median(tcp.map((r) => r.cpuUs)).toFixed(2)}, unix ${median(unix.map((r) => r.cpuUs)).toFixed(2)}; unix/tcp median of pairs ${median(ratios).toFixed(3)}`);
