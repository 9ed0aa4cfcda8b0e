// Signature verification with a prepared public key: the EVP_PKEY_CTX is set up once per key
// and reused for every signature, as `openssl speed` does. node:crypto's one-shot verify builds
// (and fetches algorithms for) a new context on every call, which costs as much as an RSA-2048
// verification itself. Links against the OpenSSL inside the node binary (node exports it).
//
// RSA keys with a usual public exponent go one step further: RSASSA-PKCS1-v1_5 verification
// (RFC 8017 §8.2.2) on OpenSSL's bignum code, with the Montgomery context, BN_CTX and the
// expected encoding made once per key. It computes s^e mod n as OpenSSL's RSA code does, without
// the per-call allocations, lock and provider dispatch around it, and compares the whole encoded
// message to the one expected (encode-and-compare, as the RFC specifies: no padding parser).
// ES256 signatures (JWS r||s) go to ECDSA_do_verify with r and s set in place, skipping the DER
// encoding they would need for EVP_PKEY_verify and its decoding on the other side. EC_KEY and
// ECDSA_do_verify are deprecated in OpenSSL 3.0 but exported by node, and the provider API has
// no entry that takes r and s.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/rsa.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <string.h>
#include <stdlib.h>
#include <stdbool.h>

enum kind { ES256 = 1, RSA_SHA256 = 2, RSA_SHA1 = 3 };

// RSA on the bignum code (see above); NULL fields: the key takes the EVP path.
typedef struct {
  BIGNUM *n, *e, *s, *m;
  BN_MONT_CTX *mont;
  BN_CTX *bnctx;
  size_t k;                 // modulus length in bytes
  unsigned char *expected;  // EM for this key's hash: 00 01 FF.. 00 DigestInfo, hash filled per call
  unsigned char *em;        // scratch: s^e mod n as k bytes
  size_t hash_at;           // where the hash goes in expected
} rsa_direct;

typedef struct {
  enum kind kind;
  EVP_PKEY *pkey;
  EVP_PKEY_CTX *ctx;
  EVP_MD *md;
  EVP_MD_CTX *mdctx;
  rsa_direct rsa;
  EC_KEY *ec;        // ES256: the key, and a signature whose r and s are set per call
  ECDSA_SIG *ecsig;
  BIGNUM *r, *s;     // owned by ecsig
} prepared;

static void rsa_direct_free(rsa_direct *r) {
  BN_free(r->n); BN_free(r->e); BN_free(r->s); BN_free(r->m);
  BN_MONT_CTX_free(r->mont);
  BN_CTX_free(r->bnctx);
  free(r->expected); free(r->em);
  memset(r, 0, sizeof *r);
}

// DigestInfo prefixes (RFC 8017 §9.2, note 1), parameters NULL as OpenSSL's RSA_verify expects.
static const unsigned char SHA1_INFO[] = { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 };
static const unsigned char SHA256_INFO[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };

// Set up the bignum path for an RSA key. Keys it does not suit (an exponent over 64 bits, as
// OpenSSL bounds it for large moduli; an even modulus) stay on the EVP path: returns 0 then.
static int rsa_direct_init(rsa_direct *r, EVP_PKEY *pkey, enum kind kind) {
  const unsigned char *info = kind == RSA_SHA1 ? SHA1_INFO : SHA256_INFO;
  size_t info_len = kind == RSA_SHA1 ? sizeof SHA1_INFO : sizeof SHA256_INFO;
  size_t hash_len = kind == RSA_SHA1 ? 20 : 32;
  if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &r->n) != 1 || EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &r->e) != 1) goto no;
  int bits = BN_num_bits(r->n), ebits = BN_num_bits(r->e);
  if (bits < 512 || bits > 16384 || !BN_is_odd(r->n) || ebits < 2 || ebits > 64 || !BN_is_odd(r->e)) goto no;
  r->k = (size_t)(bits + 7) / 8;
  // PS must be at least 8 bytes (RFC 8017 §9.2 step 3).
  if (r->k < info_len + hash_len + 11) goto no;
  if (!(r->bnctx = BN_CTX_new()) || !(r->mont = BN_MONT_CTX_new()) || !BN_MONT_CTX_set(r->mont, r->n, r->bnctx)) goto no;
  if (!(r->s = BN_new()) || !(r->m = BN_new()) || !(r->expected = malloc(r->k)) || !(r->em = malloc(r->k))) goto no;
  size_t ps = r->k - 3 - info_len - hash_len;
  r->expected[0] = 0x00;
  r->expected[1] = 0x01;
  memset(r->expected + 2, 0xff, ps);
  r->expected[2 + ps] = 0x00;
  memcpy(r->expected + 3 + ps, info, info_len);
  r->hash_at = 3 + ps + info_len;
  return 1;
no:
  rsa_direct_free(r);
  ERR_clear_error();
  return 0;
}

// RSASSA-PKCS1-v1_5-VERIFY (RFC 8017 §8.2.2) of a hash already computed.
static int rsa_direct_verify(rsa_direct *r, const unsigned char *sig, size_t sig_len, const unsigned char *hash, size_t hash_len) {
  // Step 1: the signature is exactly k bytes. RSAVP1: its integer must be below n.
  if (sig_len != r->k || hash_len != r->k - r->hash_at) return 0;
  if (!BN_bin2bn(sig, (int)sig_len, r->s) || BN_ucmp(r->s, r->n) >= 0) return 0;
  if (!BN_mod_exp_mont(r->m, r->s, r->e, r->n, r->bnctx, r->mont)) return 0;
  if (BN_bn2binpad(r->m, r->em, (int)r->k) != (int)r->k) return 0;
  // Steps 3–4: encode the expected message and compare it whole.
  memcpy(r->expected + r->hash_at, hash, hash_len);
  return memcmp(r->em, r->expected, r->k) == 0;
}

static void prepared_free(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  prepared *p = data;
  rsa_direct_free(&p->rsa);
  if (p->ecsig) ECDSA_SIG_free(p->ecsig);
  if (p->ec) EC_KEY_free(p->ec);
  if (p->mdctx) EVP_MD_CTX_free(p->mdctx);
  if (p->md) EVP_MD_free(p->md);
  if (p->ctx) EVP_PKEY_CTX_free(p->ctx);
  if (p->pkey) EVP_PKEY_free(p->pkey);
  free(p);
}

static napi_value throw_error(napi_env env, const char *msg) {
  ERR_clear_error();
  napi_throw_error(env, NULL, msg);
  return NULL;
}

// prepare(spkiDer: Buffer, kind: 1 | 2 | 3): External
static napi_value prepare(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return throw_error(env, "prepare(spkiDer, kind)");
  void *der; size_t der_len; int32_t k;
  if (napi_get_buffer_info(env, argv[0], &der, &der_len) != napi_ok) return throw_error(env, "spkiDer must be a Buffer");
  if (napi_get_value_int32(env, argv[1], &k) != napi_ok || k < ES256 || k > RSA_SHA1) return throw_error(env, "unknown kind");
  prepared *p = calloc(1, sizeof *p);
  if (!p) return throw_error(env, "out of memory");
  p->kind = (enum kind)k;
  const unsigned char *q = der;
  p->pkey = d2i_PUBKEY(NULL, &q, (long)der_len);
  int want = k == ES256 ? EVP_PKEY_EC : EVP_PKEY_RSA;
  const char *err = NULL;
  if (!p->pkey || (size_t)(q - (const unsigned char *)der) != der_len) err = "not a DER SubjectPublicKeyInfo";
  else if (EVP_PKEY_get_base_id(p->pkey) != want) err = "key type does not match the algorithm";
  else if (k == ES256 && EVP_PKEY_get_bits(p->pkey) != 256) err = "ES256 needs a P-256 key";
  else if (!(p->md = EVP_MD_fetch(NULL, k == RSA_SHA1 ? "SHA1" : "SHA256", NULL))) err = "digest unavailable";
  else if (!(p->mdctx = EVP_MD_CTX_new())) err = "out of memory";
  else if (!(p->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, p->pkey, NULL))) err = "cannot create context";
  else if (EVP_PKEY_verify_init(p->ctx) <= 0) err = "verify_init failed";
  else if (k != ES256 && (EVP_PKEY_CTX_set_rsa_padding(p->ctx, RSA_PKCS1_PADDING) <= 0 || EVP_PKEY_CTX_set_signature_md(p->ctx, p->md) <= 0)) err = "cannot set RSA PKCS#1 v1.5 padding";
  if (!err && k != ES256) rsa_direct_init(&p->rsa, p->pkey, p->kind);
  if (!err && k == ES256) {
    // Without it (out of memory) the key stays on the EVP path.
    if ((p->ec = EVP_PKEY_get1_EC_KEY(p->pkey)) && (p->ecsig = ECDSA_SIG_new()) && (p->r = BN_new()) && (p->s = BN_new()) && ECDSA_SIG_set0(p->ecsig, p->r, p->s)) {
      // r and s now belong to ecsig.
    } else {
      BN_free(p->r); BN_free(p->s);
      if (p->ecsig) ECDSA_SIG_free(p->ecsig);
      if (p->ec) EC_KEY_free(p->ec);
      p->ec = NULL; p->ecsig = NULL; p->r = p->s = NULL;
      ERR_clear_error();
    }
  }
  if (err) { prepared_free(env, p, NULL); return throw_error(env, err); }
  napi_value ext;
  if (napi_create_external(env, p, prepared_free, NULL, &ext) != napi_ok) { prepared_free(env, p, NULL); return throw_error(env, "cannot wrap key"); }
  return ext;
}

// DER encoding of one INTEGER from a 32-byte big-endian unsigned value; returns bytes written.
static size_t der_int(unsigned char *out, const unsigned char *v, size_t n) {
  size_t i = 0;
  while (i < n - 1 && v[i] == 0) i++;
  size_t len = n - i;
  int pad = v[i] & 0x80 ? 1 : 0;
  out[0] = 0x02;
  out[1] = (unsigned char)(len + pad);
  if (pad) out[2] = 0;
  memcpy(out + 2 + pad, v + i, len);
  return 2 + pad + len;
}

// Feed one Buffer or string (as UTF-8, as Buffer.from(s) encodes it) to the digest. Strings are
// copied once into a stack buffer; only a long one is measured first and copied to the heap.
static int digest_part(napi_env env, EVP_MD_CTX *mdctx, napi_value v) {
  void *data; size_t len;
  bool is_buffer;
  // Older Node-API versions do not check the type in napi_get_buffer_info: ask first.
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok) return 0;
  if (is_buffer) return napi_get_buffer_info(env, v, &data, &len) == napi_ok && EVP_DigestUpdate(mdctx, data, len) == 1;
  char stackbuf[4096];
  if (napi_get_value_string_utf8(env, v, stackbuf, sizeof stackbuf, &len) != napi_ok) return 0;
  // UTF-8 output never splits a character, so a copy that stopped short of the end by less than
  // a character's 4 bytes may have been cut: measure and copy again.
  if (len < sizeof stackbuf - 5) return EVP_DigestUpdate(mdctx, stackbuf, len) == 1;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return 0;
  char *buf = malloc(len + 1);
  if (!buf) return 0;
  int ok = napi_get_value_string_utf8(env, v, buf, len + 1, &len) == napi_ok && EVP_DigestUpdate(mdctx, buf, len) == 1;
  free(buf);
  return ok;
}

// Longest signature accepted as base64 text (RSA-8192: 1024 bytes).
#define MAX_SIG 1024

// Value of each base64 character (standard alphabet, RFC 4648 §4), 64 for anything else.
static const unsigned char b64[256] = {
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64, 64, 63,
  52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
  64,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
  15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 64,
  64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
  41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
  64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
};

// Decode base64 text spelled exactly as node's Buffer#toString('base64') spells its bytes:
// length a multiple of 4, '=' padding only at the end, unused bits zero. Any other spelling of
// the same bytes (or anything that is not base64) answers -1: the caller decodes it itself.
static long b64decode_canonical(const unsigned char *s, size_t n, unsigned char *out, size_t cap) {
  if (n == 0 || (n & 3) != 0) return -1;
  size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
  size_t outlen = n / 4 * 3 - pad;
  if (outlen > cap) return -1;
  size_t full = pad ? n - 4 : n;
  unsigned bad = 0;
  unsigned char *o = out;
  for (size_t i = 0; i < full; i += 4) {
    unsigned a = b64[s[i]], b = b64[s[i + 1]], c = b64[s[i + 2]], d = b64[s[i + 3]];
    bad |= a | b | c | d;
    unsigned v = a << 18 | b << 12 | c << 6 | d;
    o[0] = (unsigned char)(v >> 16); o[1] = (unsigned char)(v >> 8); o[2] = (unsigned char)v;
    o += 3;
  }
  if (pad) {
    const unsigned char *q = s + full;
    unsigned a = b64[q[0]], b = b64[q[1]], c = pad == 2 ? 0 : b64[q[2]];
    bad |= a | b | c;
    unsigned v = a << 18 | b << 12 | c << 6;
    // The bits past the last byte must be zero (else another spelling of the same bytes).
    if (v & (pad == 2 ? 0xffff : 0xff)) return -1;
    *o++ = (unsigned char)(v >> 16);
    if (pad == 1) *o++ = (unsigned char)(v >> 8);
  }
  // Every table value of a character in the alphabet is below 64.
  return bad & 64 ? -1 : (long)(o - out);
}

// verify(prepared: External, signature: Buffer | string, data: Buffer | string, tail?: Buffer | string): true | false | null
// The signed bytes are data followed by tail (saves the caller a concatenation). A string
// signature is base64 text, decoded here; null when it is not in canonical spelling (see above).
// ES256 signatures are JWS r||s (64 bytes); RSA ones are PKCS#1 v1.5 over SHA-256/SHA-1.
static napi_value verify(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) return throw_error(env, "verify(key, signature, data[, tail])");
  prepared *p;
  if (napi_get_value_external(env, argv[0], (void **)&p) != napi_ok) return throw_error(env, "key must come from prepare()");
  void *sig; size_t sig_len;
  unsigned char decoded[MAX_SIG];
  bool sig_buffer;
  if (napi_is_buffer(env, argv[1], &sig_buffer) != napi_ok) return throw_error(env, "signature must be a Buffer or a string");
  if (sig_buffer) {
    if (napi_get_buffer_info(env, argv[1], &sig, &sig_len) != napi_ok) return throw_error(env, "signature must be a Buffer or a string");
  } else {
    char text[MAX_SIG / 3 * 4 + 16];
    size_t n;
    if (napi_get_value_string_utf8(env, argv[1], text, sizeof text, &n) != napi_ok) return throw_error(env, "signature must be a Buffer or a string");
    // A copy that ends within a character's 4 bytes of the buffer's end may have been cut short
    // (UTF-8 output never splits a character): too long to be a signature either way.
    long m = n >= sizeof text - 5 ? -1 : b64decode_canonical((const unsigned char *)text, n, decoded, sizeof decoded);
    if (m <= 0) { napi_value nul; napi_get_null(env, &nul); return nul; }
    sig = decoded;
    sig_len = (size_t)m;
  }

  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int hash_len = 0;
  int ok = EVP_DigestInit_ex2(p->mdctx, p->md, NULL) == 1 && digest_part(env, p->mdctx, argv[2]);
  if (ok && argc > 3) {
    napi_valuetype t;
    napi_typeof(env, argv[3], &t);
    if (t != napi_undefined) ok = digest_part(env, p->mdctx, argv[3]);
  }
  ok = ok && EVP_DigestFinal_ex(p->mdctx, hash, &hash_len) == 1;
  if (!ok) return throw_error(env, "data must be a Buffer or a string");
  int result = 0;
  if (p->kind == ES256 && p->ec) {
    // ECDSA_do_verify checks 0 < r, s < n itself.
    result = sig_len == 64 && BN_bin2bn(sig, 32, p->r) && BN_bin2bn((const unsigned char *)sig + 32, 32, p->s) && ECDSA_do_verify(hash, (int)hash_len, p->ecsig, p->ec) == 1;
  } else if (p->kind == ES256) {
    if (sig_len == 64) {
      unsigned char der[72];
      size_t n = der_int(der + 2, sig, 32);
      n += der_int(der + 2 + n, (const unsigned char *)sig + 32, 32);
      der[0] = 0x30; der[1] = (unsigned char)n;
      result = EVP_PKEY_verify(p->ctx, der, n + 2, hash, hash_len) == 1;
    }
  } else if (p->rsa.n) {
    result = rsa_direct_verify(&p->rsa, sig, sig_len, hash, hash_len);
  } else {
    result = EVP_PKEY_verify(p->ctx, sig, sig_len, hash, hash_len) == 1;
  }
  // A failed verification leaves entries on this thread's OpenSSL error queue, which node:crypto
  // shares: clear them so they cannot surface as some later operation's error.
  ERR_clear_error();
  napi_value out;
  napi_get_boolean(env, result, &out);
  return out;
}

// path(prepared: External): 'rsa-bignum' | 'ecdsa-sig' | 'evp', which code verifies for this key.
static napi_value path(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  prepared *p;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], (void **)&p) != napi_ok) return throw_error(env, "path(key)");
  napi_value out;
  napi_create_string_utf8(env, p->rsa.n ? "rsa-bignum" : p->ec ? "ecdsa-sig" : "evp", NAPI_AUTO_LENGTH, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "prepare", NULL, prepare, NULL, NULL, NULL, napi_default, NULL },
    { "verify", NULL, verify, NULL, NULL, NULL, napi_default, NULL },
    { "path", NULL, path, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
