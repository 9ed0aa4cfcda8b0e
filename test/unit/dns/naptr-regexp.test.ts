import { describe, it, expect } from 'vitest';
import { compileNaptrRegexp, applyNaptrRegexp, MAX_RESULT } from '../../../src/routing/naptr-regexp.js';
import { enumDomain, domainAllowed } from '../../../src/routing/enum.js';

function apply(field: string, input: string): string | undefined | { refused: string } {
  const s = compileNaptrRegexp(field);
  if (typeof s === 'string') return { refused: s };
  return applyNaptrRegexp(s, input);
}

describe('NAPTR substitution (RFC 3402 §3.2)', () => {
  it('applies the usual ENUM forms', () => {
    expect(apply('!^.*$!sip:info@carrier-a.test!', '+442079460000')).toBe('sip:info@carrier-a.test');
    expect(apply('!^\\+44(.*)$!sip:0\\1@carrier-a.test!', '+442079460000')).toBe('sip:02079460000@carrier-a.test');
    expect(apply('!^(\\+[0-9]{2})([0-9]+)$!sip:\\1-\\2@x.test!', '+442079460000')).toBe('sip:+44-2079460000@x.test');
    expect(apply('/^\\+1(.*)$/sip:\\1@x.test/', '+15551230000')).toBe('sip:5551230000@x.test');
    expect(apply('!^\\+1!sip:x@y.test!', '+4420')).toBeUndefined();
    expect(apply('|^.*$|sip:a\\|b@x.test|', '+1')).toBe('sip:a|b@x.test');
    expect(apply('!^[+]4[0-4](.*)$!sip:\\1@x.test!i', '+4420')).toBe('sip:20@x.test');
  });

  it('refuses what could backtrack without bound, and what is not ERE', () => {
    for (const bomb of ['!^(a+)+$!x!', '!^(.*)*$!x!', '!^(a|aa)+$!x!', '!^.*.*.*.*.*$!x!', '!^(((((a)))))$!x!']) {
      expect(apply(bomb, '+1111111111111111')).toMatchObject({ refused: expect.any(String) });
    }
    for (const bad of ['', '!^.*$!x', '!^.*$!x!g', '!^\\d+$!x!', '!^(.*)$!\\2!', '1^.*$1x1', `!${'a'.repeat(300)}!x!`, '!(?=a)!x!', '!^[[:digit:]]$!x!', '!a^!x!']) {
      expect(apply(bad, '+1')).toMatchObject({ refused: expect.any(String) });
    }
  });

  it('a refused bomb never runs; an allowed worst case stays fast on the longest input', () => {
    const t0 = performance.now();
    expect(apply('!^.*.*.*X$!x!', '+' + '1'.repeat(31))).toBeUndefined();
    expect(apply('!^.*.*.*X$!x!', '1'.repeat(40))).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(200);
  });

  it('bounds the result', () => {
    const big = `!^(.*)$!sip:${'a'.repeat(200)}${'\\1'.repeat(12)}@x.test!`;
    expect(apply(big, '+'.padEnd(31, '9'))).toBeUndefined();
    expect(apply(big, '+1')).toBe(`sip:${'a'.repeat(200)}${'+1'.repeat(12)}@x.test`);
    expect(MAX_RESULT).toBe(512);
  });
});

describe('ENUM names and allowlist', () => {
  it('reverses the digits under the suffix (RFC 6116 §2.4)', () => {
    expect(enumDomain('+442079460000', 'e164.arpa')).toBe('0.0.0.0.6.4.9.7.0.2.4.4.e164.arpa');
    expect(enumDomain('+1', 'e164.test.')).toBe('1.e164.test');
    expect(enumDomain('02079460000', 'e164.arpa')).toBeUndefined();
    expect(enumDomain('+1234567890123456', 'e164.arpa')).toBeUndefined();
  });
  it('matches exact and *.domain patterns only', () => {
    expect(domainAllowed('carrier-a.test', 'carrier-a.test')).toBe(true);
    expect(domainAllowed('SBC.carrier-a.test', '*.carrier-a.test')).toBe(true);
    expect(domainAllowed('carrier-a.test', '*.carrier-a.test')).toBe(false);
    expect(domainAllowed('evilcarrier-a.test', '*.carrier-a.test')).toBe(false);
    expect(domainAllowed('carrier-a.test.evil.test', 'carrier-a.test')).toBe(false);
  });
});
