// The authentication service toward peers that require identity: SHAKEN PASSporTs (RFC 8224,
// 8225, 8588, ES256) or legacy RFC 4474 rsa-sha256 Identity, with keys from the policy.
import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { identityHeaderValue, signPassport } from './passport.js';
import { digestString, oneSpace, sipDate, signRfc4474Digest } from './rfc4474.js';
import { addrSpec, canonicalTn } from './sipfields.js';
import type { IdentitySigning } from './schema.js';

export class SignError extends Error {}

/** What is known about the request being sent (values as they will appear on the wire). */
export interface OutgoingRequest {
  from: string;
  to: string;
  requestUri?: string;
  /** P-Asserted-Identity, when sent: the originating identity for SHAKEN. */
  pai?: string;
  /** Needed for RFC 4474 only (the digest covers them). */
  callId?: string;
  cseq?: string;
  contact?: string;
  body?: Buffer | string;
  /** Date header value; generated when absent (and returned, to be sent). */
  date?: string;
}

/** A signing key as read, with the file's identity then: a key rotated in place (or by rename)
 *  is read again on the next signature, with no reload (SHAKEN certificates are short-lived). */
interface KeptKey {
  readonly key: KeyObject;
  readonly version: string;
}

export class IdentitySigner {
  private readonly keys = new Map<string, KeptKey>();
  constructor(private readonly now: () => number = Date.now) {}

  private key(path: string): KeyObject {
    try {
      // One stat per signature (a few µs beside an ECDSA or RSA signature): inode, size and the
      // nanosecond times tell a new file from the one read, also when it has the same size.
      const st = statSync(path, { bigint: true });
      const version = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
      const kept = this.keys.get(path);
      if (kept?.version === version) return kept.key;
      const key = createPrivateKey(readFileSync(path, 'utf8'));
      this.keys.set(path, { key, version });
      return key;
    } catch (e) {
      // Not kept: a missing or half-written file is read again on the next call.
      this.keys.delete(path);
      throw new SignError(`identity signing key ${path}: ${(e as Error).message}`);
    }
  }

  /** Headers to add to the outgoing request. Throws SignError when it cannot sign. */
  sign(policy: IdentitySigning, out: OutgoingRequest): Record<string, string> {
    if ('shaken' in policy) {
      const s = policy.shaken;
      const orig = canonicalTn(addrSpec(out.pai ?? out.from));
      const dest = canonicalTn(addrSpec(out.to)) ?? (out.requestUri ? canonicalTn(out.requestUri) : undefined);
      if (!orig) throw new SignError('caller is not a telephone number: cannot sign a SHAKEN PASSporT');
      if (!dest) throw new SignError('called party is not a telephone number: cannot sign a SHAKEN PASSporT');
      const key = this.key(s.key);
      if (key.asymmetricKeyType !== 'ec') throw new SignError(`SHAKEN key ${s.key} is not an EC key`);
      const jws = signPassport({
        origTn: orig, destTns: [dest], iat: Math.floor(this.now() / 1000), x5u: s.certificate_url, key,
        shaken: { attest: s.attest, origid: s.origid ?? randomUUID() },
      });
      return { Identity: identityHeaderValue(jws, s.certificate_url, 'shaken') };
    }
    const r = policy.rfc4474;
    if (!out.callId || !out.cseq) throw new SignError('RFC 4474 signing needs the outgoing Call-ID and CSeq');
    const key = this.key(r.key);
    if (key.asymmetricKeyType !== 'rsa') throw new SignError(`RFC 4474 key ${r.key} is not an RSA key`);
    const date = out.date ?? sipDate(this.now());
    const digest = digestString([
      addrSpec(out.from), addrSpec(out.to), out.callId.trim(), oneSpace(out.cseq.trim()), date, out.contact ? addrSpec(out.contact) : '', out.body ?? '',
    ]);
    return {
      Date: date,
      Identity: `"${signRfc4474Digest(digest, r.alg, key)}"`,
      'Identity-Info': `<${r.certificate_url}>;alg=${r.alg}`,
    };
  }
}
