// SDP topology hiding (issue #17.5), end to end: a SIPp peer (127.0.0.2) and a SIPp core
// (127.0.0.3) whose SDP names host, product and people in every identity field (o=, s=, i=, u=,
// e=, p=, a=tool), through `peergate start`, with media anchored on a real rtpengine and with
// media unanchored. Nothing of one side's SDP identity reaches the other; sess-version moves by
// one on a changed re-offer (RFC 3264 §8).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, runSipp, startSipp, stopAll, scratchDir, type Proc } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';

const SCEN = join(import.meta.dirname, '..', 'fixtures', 'sipp-sdp-topology');
const PEER_SECRETS = /peer-pbx|peer-host|PeerVendor|peer secret|peer-intranet|555 0100|peer-mic/;
const CORE_SECRETS = /core-pbx|core-host|CoreVendor|core secret|core-intranet|555 0200|core-mic/;

function messageLog(dir: string): string {
  return readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
}

/** SDP lines of a given type in a SIPp message log, in order. */
function sdpLines(log: string, type: string): string[] {
  return [...log.matchAll(new RegExp(`^\\s*${type}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());
}

/** The o= lines of the bodies of one kind of message (`INVITE` requests or `200` responses) received. */
function originsOf(log: string, first: RegExp): string[] {
  const out: string[] = [];
  for (const block of log.split(/-{5,}[^\n]*\n/)) {
    const lines = block.trim().split('\n');
    const startIdx = lines.findIndex((l) => /^(?:[A-Z]+ \S+ SIP\/2\.0|SIP\/2\.0 \d{3})/.test(l.trim()));
    if (startIdx < 0 || !first.test(lines[startIdx]!.trim())) continue;
    if (!/received/i.test(lines.slice(0, startIdx).join(' '))) continue;
    const o = lines.find((l) => l.trim().startsWith('o='));
    if (o) out.push(o.trim().slice(2));
  }
  return out;
}

for (const mode of ['anchored', 'unanchored'] as const) {
  describe(`SDP identity fields never cross (${mode} media)`, () => {
    let pg: RunningPeergate;
    let coreDir: string;
    let core: Proc;
    let ports: number[];

    beforeAll(async () => {
      ports = await freePorts(4);
      const [peerSip, coreSip, ops, coreUas] = ports as [number, number, number, number];
      coreDir = scratchDir(`sdp-topo-core-${mode}-`);
      core = startSipp(['-sf', join(SCEN, 'uas-hostile-sdp.xml'), '-i', CORE_IP, '-p', String(coreUas), '-t', 'u1', '-trace_msg', '-m', '1'], coreDir);
      const base = 40000 + (ops % 200) * 100;
      pg = await startPeergate(twoSidedPolicy({ peerPort: peerSip, corePort: coreSip, opsPort: ops, coreTarget: `sip:${CORE_IP}:${coreUas}`, peerIp: PEER_IP, logLevel: 'warn' }, {
        media: mode === 'anchored' ? { rtpengine: 'spawn', embedded: { port_min: base, port_max: base + 99 } } : { anchoring: false },
        peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, targets: [`sip:${PEER_IP}:5060`] }],
      }));
    }, 60_000);

    afterAll(async () => {
      await pg?.stop();
      await stopAll();
    });

    it('hides o=, s=, i=, u=, e=, p=, a=tool both ways; keeps c= true; re-offer version +1', async () => {
      const dir = scratchDir(`sdp-topo-uac-${mode}-`);
      const r = await runSipp(['-sf', join(SCEN, 'uac-hostile-sdp.xml'), `127.0.0.1:${ports[0]}`, '-i', PEER_IP, '-p', '0', '-t', 'u1',
        '-s', '+15551230000', '-m', '1', '-trace_msg'], { dir, timeoutS: 40 });
      const peerSaw = messageLog(dir);
      expect(r.successful, `${r.output.slice(-1500)}\n${peerSaw.slice(-3000)}`).toBe(1);
      await core.exited;
      const coreSaw = messageLog(coreDir);

      // What each side received contains nothing of the other's SDP identity (its own sent
      // messages are in its log too, so compare with the other side's secrets only).
      expect(coreSaw).toMatch(/INVITE sip:/);
      expect(coreSaw).not.toMatch(PEER_SECRETS);
      expect(peerSaw).not.toMatch(CORE_SECRETS);

      // Every s= either side received from peergate is "-", and every o= username is "-".
      const coreGotInvites = originsOf(coreSaw, /^INVITE /);
      const peerGot200s = originsOf(peerSaw, /^SIP\/2\.0 200/);
      expect(coreGotInvites).toHaveLength(2);
      expect(peerGot200s).toHaveLength(2);
      for (const o of [...coreGotInvites, ...peerGot200s]) expect(o).toMatch(/^- \d+ \d+ IN IP4 \S+$/);
      expect(sdpLines(coreSaw, 's').filter((s) => s !== '-').every((s) => /CoreVendor/.test(s))).toBe(true);
      expect(sdpLines(peerSaw, 's').filter((s) => s !== '-').every((s) => /PeerVendor/.test(s))).toBe(true);

      // RFC 3264 §8: same sess-id across the dialog, version +1 for the changed re-offer/answer.
      for (const seen of [coreGotInvites, peerGot200s]) {
        const [, id1, v1] = seen[0]!.split(' ');
        const [, id2, v2] = seen[1]!.split(' ');
        expect(id2).toBe(id1);
        expect(Number(v2)).toBe(Number(v1) + 1);
      }

      // c=: with anchored media the core sees rtpengine (127.0.0.1), never the peer's media
      // address; unanchored, media flows directly so the peer's own c= must arrive unchanged.
      const coreC = sdpLines(coreSaw, 'c').filter((c) => !c.endsWith(CORE_IP));
      expect(coreC.length).toBeGreaterThan(0);
      for (const c of coreC) expect(c).toBe(mode === 'anchored' ? 'IN IP4 127.0.0.1' : `IN IP4 ${PEER_IP}`);
    }, 60_000);
  });
}
