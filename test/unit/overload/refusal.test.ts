// The overload gate's 503 template: the same bytes OutMessage (sofia-sip's header order) made.
import { describe, expect, it } from 'vitest';
import { RefusalTemplate } from '../../../src/engine/overload/refusal.js';
import { OutMessage } from '../../../src/engine/core/outgoing.js';
import { EMPTY } from '../../../src/engine/core/build.js';

function viaOutMessage(vias: string[], from: string, to: string, callId: string, cseq: string, retryAfter: string | undefined): string {
  const m = new OutMessage();
  for (const v of vias) m.add('via', v);
  m.add('from', from);
  m.add('to', to);
  m.add('call-id', callId);
  m.add('cseq', cseq);
  if (retryAfter !== undefined) m.add('retry-after', retryAfter);
  return m.render('SIP/2.0 503 Service Unavailable', EMPTY).toString('utf8');
}

describe('refusal template', () => {
  const cases: [string[], string, string, string, string][] = [
    [['SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-1;rport=5061'], 'sipp <sip:sipp@127.0.0.2:5061>;tag=1', 'svc <sip:svc@127.0.0.1>;tag=abc', 'c1@h', '1 INVITE'],
    [['SIP/2.0/UDP a.example;branch=z9hG4bK-2;rport=5060;received=192.0.2.1', 'SIP/2.0/TCP b.example;branch=z9hG4bK-x', 'SIP/2.0/UDP c'], '"Ünïcode" <sip:u@h>;tag=2', '<sip:v@h>;tag=t', 'c2', '77 INVITE'],
  ];
  for (const retryAfter of ['2', undefined]) {
    it(`renders what OutMessage renders (Retry-After ${retryAfter ?? 'left out'})`, () => {
      const t = new RefusalTemplate(retryAfter);
      for (const [vias, from, to, callId, cseq] of cases) {
        expect(t.render(vias, from, to, callId, cseq).toString('utf8')).toBe(viaOutMessage(vias, from, to, callId, cseq, retryAfter));
      }
    });
  }
});
