// Signature verification with a key prepared once per certificate. The native addon
// (native/sigverify.c) keeps one OpenSSL verify context per key, as `openssl speed` does;
// node:crypto's one-shot verify sets one up on every call, which for RSA-2048 costs about as
// much as the verification itself. Without the addon (not built), node:crypto is used: same
// results, slower. PEERGATE_NATIVE_VERIFY=0 forces node:crypto (tests compare the two).
import { createRequire } from 'node:module';
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';

/** ES256: JWS r||s over SHA-256. RS256 / RS1: RSA PKCS#1 v1.5 over SHA-256 / SHA-1. */
export type SigAlg = 'ES256' | 'RS256' | 'RS1';

export interface PreparedKey {
  /** The code that verifies: the addon's RSA bignum path (RFC 8017 §8.2.2 on OpenSSL's bignum
   *  functions), its ECDSA path (r and s straight to ECDSA_do_verify), its EVP path (unusual RSA
   *  keys), or node:crypto. */
  readonly path: NativePath | 'node:crypto';
  /** Does `signature` verify over the bytes of `data` followed by those of `tail`? Strings are
   *  taken as UTF-8 (as Buffer.from encodes them). Never throws for a bad signature. */
  verify(data: Buffer | string, signature: Buffer, tail?: Buffer | string): boolean;
  /** verify, with the signature given as base64 text and decoded without a JS buffer. Undefined
   *  when the text is not spelled as Buffer#toString('base64') spells its bytes (padding, zero
   *  unused bits, nothing outside the alphabet) or is longer than any signature (MAX_SIGNATURE
   *  bytes): the caller then decodes it itself and calls verify. */
  verifyBase64(data: Buffer | string, signature: string, tail?: Buffer | string): boolean | undefined;
}

type NativePath = 'rsa-bignum' | 'ecdsa-sig' | 'evp';

interface Addon {
  prepare(spkiDer: Buffer, kind: number): object;
  verify(key: object, signature: Buffer | string, data: Buffer | string, tail?: Buffer | string): boolean | null;
  path(key: object): NativePath;
}

const KIND: Record<SigAlg, number> = { ES256: 1, RS256: 2, RS1: 3 };
const HASH: Record<SigAlg, string> = { ES256: 'sha256', RS256: 'sha256', RS1: 'sha1' };

function loadAddon(): Addon | undefined {
  if (process.env.PEERGATE_NATIVE_VERIFY === '0') return undefined;
  try {
    return createRequire(import.meta.url)('../../../native/build/Release/sigverify.node') as Addon;
  } catch {
    return undefined;
  }
}

const addon = loadAddon();

/** Which implementation verifies: 'native' (the addon) or 'node:crypto'. */
export const verifierImplementation: 'native' | 'node:crypto' = addon ? 'native' : 'node:crypto';

class NativeKey implements PreparedKey {
  readonly path: NativePath;
  constructor(private readonly handle: object, private readonly es256: boolean, private readonly a: Addon) {
    this.path = a.path(handle);
  }
  verify(data: Buffer | string, signature: Buffer, tail?: Buffer | string): boolean {
    if (signature.length === 0 || (this.es256 && signature.length !== 64)) return false;
    return this.a.verify(this.handle, signature, data, tail) === true;
  }
  verifyBase64(data: Buffer | string, signature: string, tail?: Buffer | string): boolean | undefined {
    const r = this.a.verify(this.handle, signature, data, tail);
    return r === null ? undefined : r;
  }
}

/** Longest signature taken as base64 text (RSA-8192), as the addon's MAX_SIG. */
const MAX_SIGNATURE = 1024;

/** Bytes of base64 text in the spelling Buffer#toString('base64') gives them, else undefined. */
function canonicalBase64(text: string): Buffer | undefined {
  if (text.length > ((MAX_SIGNATURE + 2) / 3) * 4) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.length > 0 && bytes.length <= MAX_SIGNATURE && bytes.toString('base64') === text ? bytes : undefined;
}

class NodeKey implements PreparedKey {
  readonly path = 'node:crypto';
  private readonly keyArg: KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' };
  constructor(key: KeyObject, private readonly alg: SigAlg) {
    this.keyArg = alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key;
  }
  verify(data: Buffer | string, signature: Buffer, tail?: Buffer | string): boolean {
    if (signature.length === 0 || (this.alg === 'ES256' && signature.length !== 64)) return false;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    try {
      return cryptoVerify(HASH[this.alg], tail === undefined ? bytes : Buffer.concat([bytes, typeof tail === 'string' ? Buffer.from(tail) : tail]), this.keyArg, signature);
    } catch {
      return false;
    }
  }
  verifyBase64(data: Buffer | string, signature: string, tail?: Buffer | string): boolean | undefined {
    const sig = canonicalBase64(signature);
    return sig === undefined ? undefined : this.verify(data, sig, tail);
  }
}

/** Prepare `key` for `alg`. Throws when the key does not fit the algorithm (not EC P-256 for
 *  ES256, not RSA for RS256/RS1): callers check the key type first and answer 437. */
export function prepareKey(key: KeyObject, alg: SigAlg, impl: 'native' | 'node:crypto' = verifierImplementation): PreparedKey {
  const wantType = alg === 'ES256' ? 'ec' : 'rsa';
  if (key.asymmetricKeyType !== wantType) throw new Error(`${alg} needs an ${wantType.toUpperCase()} key, not ${key.asymmetricKeyType}`);
  if (alg === 'ES256' && key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('ES256 needs a P-256 key');
  if (impl === 'native' && addon) return new NativeKey(addon.prepare(key.export({ type: 'spki', format: 'der' }), KIND[alg]), alg === 'ES256', addon);
  return new NodeKey(key, alg);
}
