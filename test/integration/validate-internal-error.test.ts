// Error containment (issue #17.1): an unexpected exception inside the B2BUA's call flow ends
// the call with a plain 500 in peergate's words, logs the Call-ID, counts calls_total{result=
// error}, and none of the exception's text reaches the network. The B2BUA runs in-process on
// the embedded engine; a stage that throws stands in for any bug (the B2BUA is what is tested).
import { describe, it, expect, afterAll } from 'vitest';
import { Writable } from 'node:stream';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { startTestEngine, SECRET } from '../helpers/engine.js';
import { runSipp, scratchDir, stopAll, writeFile } from '../helpers/procs.js';
import { sippAck, SIPP_FROM_E164 } from '../helpers/sipp-xml.js';
import { listener } from '../helpers/peergate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { B2bua } from '../../src/sbc/b2bua.js';
import type { Policy } from '../../src/policy/schema.js';

const PEER_IP = '127.0.0.2';
const SECRET_TEXT = 'kaboom-internal-detail-7f3a';

const SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="expect-500">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="100" optional="true"/>
  <recv response="500"/>
${sippAck({ uri: 'sip:[service]@[remote_ip]:[remote_port]', branch: '[branch-3]', from: SIPP_FROM_E164, closeIndent: '' })}
</scenario>
`;

let b2bua: B2bua | undefined;
afterAll(async () => {
  b2bua?.disconnect();
  await stopAll();
});

describe('an exception inside the call flow', () => {
  it('is a plain 500 with no exception text on the wire, a log line with the Call-ID, and a result=error count', async () => {
    const engine = await startTestEngine();
    const parsed = parsePolicy(stringify({
      // The core listener is never used here; the policy just needs one.
      listen: [listener('peer-udp', engine.sipPort), listener('core-udp', engine.sipPort, { address: '127.0.0.9' })],
      core: { targets: ['sip:127.0.0.3:5999'] },
      media: { anchoring: false },
      ops: { port: 1 },
      peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, targets: [`sip:${PEER_IP}:5060`] }],
      routes: [{ from: 'peers', to: 'core' }],
    }), 'policy.yaml');
    expect(parsed.ok, JSON.stringify(!parsed.ok && parsed.errors)).toBe(true);
    const policy = (parsed as { ok: true; policy: Policy }).policy;
    const logged: string[] = [];
    const log = pino({ level: 'info' }, new Writable({ write(chunk, _enc, cb) { logged.push(String(chunk)); cb(); } }));
    const results: string[] = [];
    b2bua = new B2bua({
      policy: () => policy, log,
      stages: { limits: { admitCall: () => { throw new TypeError(`${SECRET_TEXT}: cannot read properties of undefined`); } } },
      observer: { request() {}, refusal() {}, response() {}, callStarted() {}, callEnded() {}, callFinished: (_p, _d, r) => results.push(r), callSetup() {} },
    });
    await b2bua.connect({ host: '127.0.0.1', port: engine.wirePort, secret: SECRET });

    const dir = scratchDir('internal-error-');
    const r = await runSipp(['-sf', writeFile(dir, 'expect-500.xml', SCENARIO), `127.0.0.1:${engine.sipPort}`, '-i', PEER_IP, '-p', '0', '-t', 'u1',
      '-s', '+15551230000', '-m', '1', '-trace_msg'], { dir, timeoutS: 20 });
    const saw = readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    expect(r.successful, `${r.output.slice(-1500)}\n${saw.slice(-2000)}`).toBe(1);
    expect(saw).toMatch(/^SIP\/2\.0 500 Internal Error\s*$/m);
    expect(saw).not.toContain(SECRET_TEXT);
    expect(saw).not.toMatch(/TypeError|undefined/);
    const callId = /^Call-ID:\s*(\S+)/im.exec(saw)?.[1];
    expect(callId).toBeTruthy();
    const line = logged.find((l) => l.includes('call flow error'));
    expect(line).toContain(callId!);
    expect(line).toContain(SECRET_TEXT); // the detail is for the operator's log only
    expect(results).toContain('error');
  }, 40_000);
});
