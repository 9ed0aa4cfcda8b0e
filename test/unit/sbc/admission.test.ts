import { describe, it, expect } from 'vitest';
import { admit, viaSentBy, nextMaxForwards } from '../../../src/sbc/admission.js';

const policy = { methods: ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS'], transport: 'any' as const };
const own = new Set(['127.0.0.1:5060']);
const base = { method: 'INVITE', protocol: 'udp', maxForwards: '70', vias: ['SIP/2.0/UDP 10.9.9.9:5070;branch=z9hG4bK1'] };

describe('admission', () => {
  it('admits an ordinary INVITE', () => expect(admit(base, policy, own)).toBeNull());
  it('refuses REGISTER on a peering interface (RFC 6404 §2.3.2.1)', () => {
    expect(admit({ ...base, method: 'REGISTER' }, { ...policy, methods: [...policy.methods, 'REGISTER'] }, own)?.status).toBe(403);
  });
  it('refuses methods the peer may not use with 405', () => expect(admit({ ...base, method: 'MESSAGE' }, policy, own)?.status).toBe(405));
  it('answers Max-Forwards 0 with 483 and garbage with 400', () => {
    expect(admit({ ...base, maxForwards: '0' }, policy, own)?.status).toBe(483);
    expect(admit({ ...base, maxForwards: 'abc' }, policy, own)?.status).toBe(400);
  });
  it('does not take the sender\'s own top Via for a loop', () => {
    expect(admit({ ...base, vias: ['SIP/2.0/UDP 127.0.0.1:5060;branch=a'] }, policy, own)).toBeNull();
  });
  it('detects a loop through our own address (482)', () => {
    expect(admit({ ...base, vias: ['SIP/2.0/UDP 10.9.9.9;branch=a', 'SIP/2.0/TCP 127.0.0.1:5060;branch=b'] }, policy, own)?.status).toBe(482);
  });
  it('refuses a TLS-only peer on other transports', () => {
    const r = admit(base, { ...policy, transport: 'tls' }, own);
    expect(r?.status).toBe(403);
    expect(admit({ ...base, protocol: 'tls' }, { ...policy, transport: 'tls' }, own)).toBeNull();
  });
  it('parses Via sent-by', () => {
    expect(viaSentBy('SIP/2.0/UDP host.example;branch=x')).toBe('host.example:5060');
    expect(viaSentBy('SIP/2.0/TLS [2001:db8::1]:5061;rport')).toBe('[2001:db8::1]:5061');
  });
  it('decrements Max-Forwards across the B2BUA', () => {
    expect(nextMaxForwards('10')).toBe(9);
    expect(nextMaxForwards(undefined)).toBe(70);
    expect(nextMaxForwards('200')).toBe(70);
  });
});
