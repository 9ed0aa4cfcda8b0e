import { describe, it, expect } from 'vitest';
import { selectDestinations } from '../../../src/sbc/routing.js';
import { routingNumber as canonicalNumber, uriHost } from '../../../src/sip/grammar/index.js';

const rules = [
  { from: 'core', called_prefix: '+4420', to: 'carrier-a' },
  { from: 'core', called_prefix: '+1', to: ['carrier-a', 'legacy-b'] },
  { from: 'core', domain: 'b.example', to: 'legacy-b' },
  { from: 'peers', to: 'core' },
];

describe('routing', () => {
  it('first matching rule wins, in file order', () => {
    expect(selectDestinations(rules, { origin: 'core', called: '+442079460000', domain: 'x' })).toEqual(['carrier-a']);
    expect(selectDestinations(rules, { origin: 'core', called: '+1 (555) 010-0000', domain: 'x' })).toEqual(['carrier-a', 'legacy-b']);
  });
  it('matches domains case-insensitively', () => {
    expect(selectDestinations(rules, { origin: 'core', called: '999', domain: 'B.example' })).toEqual(['legacy-b']);
  });
  it('routes peers to core and never back to the origin', () => {
    expect(selectDestinations(rules, { origin: 'carrier-a', called: '+4420', domain: 'x' })).toEqual(['core']);
    expect(selectDestinations([{ from: 'legacy-b', to: ['legacy-b', 'carrier-a'] }], { origin: 'legacy-b', called: '1', domain: 'x' })).toEqual(['carrier-a']);
  });
  it('returns nothing when no rule matches', () => {
    expect(selectDestinations(rules, { origin: 'core', called: '+33', domain: 'x' })).toEqual([]);
  });
  it('canonicalises numbers and extracts hosts', () => {
    expect(canonicalNumber('+44 (20) 7946-0000')).toBe('+442079460000');
    expect(uriHost('sip:+1555@carrier.example:5061;transport=tls')).toBe('carrier.example');
    expect(uriHost('sip:[2001:db8::1]:5060')).toBe('2001:db8::1');
    expect(uriHost('sip:host.example')).toBe('host.example');
  });
});
