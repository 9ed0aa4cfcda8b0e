// OPTIONS probes through the drachtio connection (the B2BUA's srf): the probe is built here
// from nothing but the target and our own listener, so it carries nothing of the other side
// (no Call-ID, tags, Via or identity of any call; the engine writes our side's Via/From host).
import { isIPv6 } from 'node:net';
import type Srf from 'drachtio-srf';
import type { Policy } from '../policy/schema.js';
import type { ProbeSender } from './health.js';
import { hopUri, engineTlsHeaders } from './index.js';
import { EGRESS_HEADER } from '../sbc/b-leg.js';

export function srfProbeSender(srf: Srf, policy: () => Policy): ProbeSender {
  return (t, timeoutMs) => new Promise((resolve) => {
    const p = policy();
    let done = false;
    const finish = (v: number | 'timeout') => { if (!done) { done = true; clearTimeout(timer); resolve(v); } };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    // Request-URI: the target without user part (RFC 3261 §11.1 pings the server, not a user).
    const ruri = t.uri.replace(/^(sips?:)[^@]*@/i, '$1');
    const headers: Record<string, string> = {
      From: '<sip:options@localhost>',
      To: `<${ruri.replace(/[;?].*$/, '')}>`,
      'Max-Forwards': '70',
    };
    if (p.engine.embedded) {
      const v6 = isIPv6(t.hop.address);
      const l = p.listen.find((x) => x.side === t.side && x.transport === t.hop.transport && isIPv6(x.address) === v6)
        ?? p.listen.find((x) => x.side === t.side && x.transport === t.hop.transport) ?? p.listen.find((x) => x.side === t.side);
      if (l) headers[EGRESS_HEADER] = `${l.address}:${l.port}`;
      Object.assign(headers, engineTlsHeaders({ side: t.peer ? { kind: 'peer', peer: t.peer } : { kind: 'core' }, hop: t.hop }));
    }
    type Req = { on(ev: 'response', cb: (res: { status: number }) => void): void };
    // drachtio-srf's (uri, opts, callback) form; its typings only declare the socket-first one.
    const request = (srf as unknown as { request(uri: string, o: object, cb: (err: Error | null, req: Req) => void): void }).request.bind(srf);
    request(ruri, { method: 'OPTIONS', headers, proxy: hopUri(t.hop) }, (err, req) => {
      if (err) { finish(503); return; }
      req.on('response', (res) => { if (res.status >= 200) finish(res.status); });
    });
  });
}
