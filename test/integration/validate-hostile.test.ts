// Validate before routing (issue #17.1), end to end: hostile INVITEs from a configured peer
// (SIPp on 127.0.0.2) to `peergate start`, with a SIPp UAS as the core (127.0.0.3). Each one is
// answered by peergate with its own precise 4xx, and the core receives nothing at all.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, runSipp, startUas, scratchDir, writeFile, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startSignallingTwoSided, type RunningPeergate } from '../helpers/peergate.js';
import { sippAck, SIPP_FROM_E164 } from '../helpers/sipp-xml.js';

/** Text that must never be in a reason phrase or Warning: library and exception wording. */
const LIBRARY_TEXT = /createUAS|drachtio|srf|Error|exception|undefined|null|TypeError|stack|\bat \w/i;

let pg: RunningPeergate;
let target: string;
let coreUasDir: string;

function messageLog(dir: string): string {
  if (!existsSync(dir)) return '';
  return readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
}

interface Hostile { requestUri?: string; contact?: string; contentType?: string; body?: string }

/** One INVITE with the hostile parts in it, expecting `status`, then the ACK (same branch). */
function scenario(h: Hostile, status: number): string {
  const body = h.body ?? '';
  const lines = [
    `INVITE ${h.requestUri ?? 'sip:[service]@[remote_ip]:[remote_port]'} SIP/2.0`,
    'Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]',
    'From: <sip:+15550001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]',
    'To: <sip:[service]@[remote_ip]:[remote_port]>',
    'Call-ID: [call_id]',
    'CSeq: 1 INVITE',
    ...(h.contact === undefined ? [] : [`Contact: ${h.contact}`]),
    ...(h.contentType ? [`Content-Type: ${h.contentType}`] : []),
    'Max-Forwards: 70',
    'Content-Length: [len]',
    '',
    ...body.split('\n'),
  ];
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="hostile">
  <send retrans="500"><![CDATA[
${lines.join('\n')}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="${status}"/>
${sippAck({ uri: 'sip:[service]@[remote_ip]:[remote_port]', branch: '[branch-3]', from: SIPP_FROM_E164, closeIndent: '' })}
</scenario>
`;
}

const GOOD_SDP = 'v=0\no=- 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [local_ip]\nt=0 0\nm=audio [media_port] RTP/AVP 0\n';

beforeAll(async () => {
  const [coreUas] = await freePorts(1) as [number];
  coreUasDir = scratchDir('validate-core-');
  startUas(CORE_IP, coreUas, { dir: coreUasDir, extra: ['-trace_msg'] });
  ({ pg, target } = await startSignallingTwoSided(`sip:${CORE_IP}:${coreUas}`, PEER_IP));
}, 60_000);

afterAll(() => stopInOrder(pg));

const CASES: { name: string; h: Hostile; status: number; reason: string; extra?: RegExp }[] = [
  { name: 'no Contact', h: {}, status: 400, reason: 'Missing Contact Header' },
  { name: 'Contact with an unknown scheme', h: { contact: '<http://evil.example/x>' }, status: 400, reason: 'Unsupported Contact URI Scheme' },
  { name: 'Contact *', h: { contact: '*' }, status: 400, reason: 'Bad Contact Header' },
  { name: 'two Contacts', h: { contact: '<sip:a@[local_ip]:[local_port]>, <sip:b@[local_ip]:[local_port]>' }, status: 400, reason: 'Bad Contact Header' },
  { name: 'Request-URI with an unknown scheme', h: { requestUri: 'im:[service]@[remote_ip]', contact: '<sip:sipp@[local_ip]:[local_port]>' }, status: 416, reason: 'Unsupported URI Scheme' },
  { name: 'SDP that does not parse', h: { contact: '<sip:sipp@[local_ip]:[local_port]>', contentType: 'application/sdp', body: 'v=0\nthis is not SDP\n' }, status: 400, reason: 'Malformed SDP Body' },
  { name: 'a body that is not SDP', h: { contact: '<sip:sipp@[local_ip]:[local_port]>', contentType: 'text/plain', body: 'hello' }, status: 415, reason: 'Unsupported Media Type', extra: /^Accept:\s*application\/sdp\s*$/im },
  { name: 'a body without Content-Type', h: { contact: '<sip:sipp@[local_ip]:[local_port]>', body: GOOD_SDP }, status: 400, reason: 'Missing Content-Type' },
];

describe('hostile INVITEs are answered by peergate before any B-leg', () => {
  for (const c of CASES) {
    it(`${c.name} → ${c.status} ${c.reason}, and the core receives nothing`, async () => {
      const dir = scratchDir('validate-uac-');
      const scen = writeFile(dir, 'hostile.xml', scenario(c.h, c.status));
      const before = await pg.metric('peergate_refusals_total', { peer: 'carrier-a', reason: 'malformed' });
      const r = await runSipp(['-sf', scen, target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
        '-m', '1', '-trace_msg'], { dir, timeoutS: 20 });
      const log = messageLog(dir);
      expect(r.successful, `${r.output.slice(-1500)}\n${log.slice(-3000)}`).toBe(1);
      const statusLine = new RegExp(`^SIP/2\\.0 ${c.status} (.*)$`, 'm').exec(log);
      expect(statusLine?.[1]?.trim()).toBe(c.reason);
      // Nothing of a library or exception in any reason phrase, Reason or Warning the caller saw.
      for (const m of log.matchAll(/^(?:SIP\/2\.0 \d{3} (.*)|(?:Reason|Warning):(.*))$/gm)) expect(m[1] ?? m[2]).not.toMatch(LIBRARY_TEXT);
      if (c.extra) expect(log).toMatch(c.extra);
      expect(await pg.metric('peergate_refusals_total', { peer: 'carrier-a', reason: 'malformed' })).toBe(before + 1);
      // The core never heard of it.
      expect(messageLog(coreUasDir)).not.toMatch(/INVITE sip:/);
    }, 40_000);
  }

  it('a well-formed INVITE still reaches the core (the same peer, the same path)', async () => {
    const dir = scratchDir('validate-ok-');
    const r = await runSipp(['-sn', 'uac', target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '1', '-d', '100'], { dir, timeoutS: 30 });
    expect(r.successful, r.output.slice(-1500)).toBe(1);
    expect(messageLog(coreUasDir)).toMatch(/INVITE sip:/);
  }, 40_000);
});
