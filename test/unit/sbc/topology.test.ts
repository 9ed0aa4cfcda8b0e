import { describe, it, expect } from 'vitest';
import { HeaderAllowlist, newFrom, userPart, displayName, anonymizeFrom } from '../../../src/sbc/topology.js';

const hdrs: Record<string, string> = {
  'allow': 'INVITE, ACK, BYE',
  'user-agent': 'InternalPBX 1.0 (10.1.2.3)',
  'p-asserted-identity': '<sip:+15551234@core.internal>',
  'privacy': 'none',
  'x-internal-route': 'pbx7.core.internal',
  'diversion': '<sip:+1555@pbx.internal>;reason=unconditional',
  'record-route': '<sip:10.1.1.1;lr>',
};
const get = (n: string) => hdrs[n.toLowerCase()];

describe('topology hiding: header allowlist', () => {
  it('forwards only allowlisted headers, never unknown ones', () => {
    const out = new HeaderAllowlist().requestHeaders(get, { trustedSender: true, trustedReceiver: true });
    expect(out['Allow']).toBe('INVITE, ACK, BYE');
    expect(Object.keys(out).map((k) => k.toLowerCase())).not.toContain('x-internal-route');
    expect(Object.keys(out).map((k) => k.toLowerCase())).not.toContain('diversion');
    expect(Object.keys(out).map((k) => k.toLowerCase())).not.toContain('user-agent');
  });
  it('lets the operator widen the list but never to topology headers', () => {
    const out = new HeaderAllowlist({ forward_headers: ['Diversion', 'Record-Route', 'Via'] }).requestHeaders(get, { trustedSender: true, trustedReceiver: true });
    expect(out['Diversion']).toBeDefined();
    expect(out['Record-Route']).toBeUndefined();
  });
  it('replaces User-Agent when asked', () => {
    const out = new HeaderAllowlist({ user_agent: 'replace', user_agent_value: 'sbe' }).requestHeaders(get, { trustedSender: false, trustedReceiver: false });
    expect(out['User-Agent']).toBe('sbe');
  });
  it('applies RFC 3325 trust to P-Asserted-Identity', () => {
    const l = new HeaderAllowlist();
    expect(l.requestHeaders(get, { trustedSender: true, trustedReceiver: true })['P-Asserted-Identity']).toBe('<sip:+15551234@core.internal>');
    expect(l.requestHeaders(get, { trustedSender: false, trustedReceiver: true })['P-Asserted-Identity']).toBeUndefined();
    expect(l.requestHeaders(get, { trustedSender: true, trustedReceiver: false })['P-Asserted-Identity']).toBeUndefined();
  });
  it('builds a new From with our host and the caller user and name', () => {
    expect(newFrom('"Alice \\"A\\"" <sip:+15551234@10.0.0.1:5060>;tag=abc')).toBe('"Alice \\"A\\"" <sip:+15551234@localhost>');
    expect(newFrom('<sip:10.0.0.1>;tag=x')).toBe('<sip:anonymous@localhost>');
    expect(userPart('tel:+1-555-0100;phone-context=x')).toBe('+1-555-0100');
    expect(displayName('Bob <sip:b@h>')).toBe('Bob');
  });
  it('anonymises From per RFC 3323: always when configured, for Privacy: user toward untrusted receivers', () => {
    expect(anonymizeFrom(undefined, 'always', true)).toBe(true);
    expect(anonymizeFrom('user', 'honor', false)).toBe(true);
    expect(anonymizeFrom('id;user', 'honor', false)).toBe(true);
    expect(anonymizeFrom('user', 'honor', true)).toBe(false);
    expect(anonymizeFrom('id', 'honor', false)).toBe(false);
    expect(anonymizeFrom('none', 'honor', false)).toBe(false);
    expect(anonymizeFrom('username-is-not-user', 'honor', false)).toBe(false);
  });
});
