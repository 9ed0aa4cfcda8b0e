// peergate's SIP parser vs drachtio-srf's on the torture corpus and the fuzz seeds
// (test/fuzz/differential.ts). docs/fuzzing.md explains the disagreements; this pins their shape.
import { describe, expect, it } from 'vitest';
import { compare } from '../../fuzz/differential.js';

describe('differential: peergate parser vs drachtio-srf parser', () => {
  it('agree on every valid message; disagree only where RFC 4475 says reject and drachtio-srf does not validate', () => {
    const { verdicts, disagreements } = compare();
    expect(verdicts.length).toBeGreaterThan(50);
    // Everything RFC 4475 calls valid, and every seed, is accepted by both.
    for (const v of verdicts.filter((x) => !x.name.startsWith('torture/invalid/'))) expect(v, v.name).toMatchObject({ peergate: true, srf: true });
    // Every disagreement: an RFC 4475 §3.1.2/§3.3 invalid message peergate rejects and drachtio-srf takes.
    for (const d of disagreements) {
      expect(d.name).toMatch(/^torture\/invalid\//);
      expect(d).toMatchObject({ peergate: false, srf: true });
    }
    // peergate rejects every invalid message.
    for (const v of verdicts.filter((x) => x.name.startsWith('torture/invalid/'))) expect(v.peergate, v.name).toBe(false);
    expect(disagreements.map((d) => d.name.slice('torture/invalid/'.length)).sort()).toEqual([
      'badaspec', 'baddate', 'baddn', 'badinv01', 'badvers', 'bigcode', 'clerr', 'escruri', 'insuf', 'ltgtruri',
      'mcl01', 'mismatch01', 'mismatch02', 'multi01', 'ncl', 'quotbal', 'regbadct', 'scalar02', 'scalarlg', 'trws',
    ]);
  });
});
