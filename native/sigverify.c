// Signature verification with a prepared public key: the EVP_PKEY_CTX is set up once per key
// and reused for every signature, as `openssl speed` does. node:crypto's one-shot verify builds
// (and fetches algorithms for) a new context on every call, which costs as much as an RSA-2048
// verification itself. Links against the OpenSSL inside the node binary (node exports it).
#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/rsa.h>
#include <openssl/err.h>
#include <string.h>
#include <stdlib.h>

enum kind { ES256 = 1, RSA_SHA256 = 2, RSA_SHA1 = 3 };

typedef struct {
  enum kind kind;
  EVP_PKEY *pkey;
  EVP_PKEY_CTX *ctx;
  EVP_MD *md;
  EVP_MD_CTX *mdctx;
} prepared;

static void prepared_free(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  prepared *p = data;
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
  if (napi_get_buffer_info(env, v, &data, &len) == napi_ok) return EVP_DigestUpdate(mdctx, data, len) == 1;
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
  if (napi_get_buffer_info(env, argv[1], &sig, &sig_len) != napi_ok) {
    char text[MAX_SIG / 3 * 4 + 8];
    size_t n;
    if (napi_get_value_string_utf8(env, argv[1], text, sizeof text, &n) != napi_ok) return throw_error(env, "signature must be a Buffer or a string");
    long m = n >= sizeof text - 1 ? -1 : b64decode_canonical((const unsigned char *)text, n, decoded, sizeof decoded);
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
  if (p->kind == ES256) {
    if (sig_len == 64) {
      unsigned char der[72];
      size_t n = der_int(der + 2, sig, 32);
      n += der_int(der + 2 + n, (const unsigned char *)sig + 32, 32);
      der[0] = 0x30; der[1] = (unsigned char)n;
      result = EVP_PKEY_verify(p->ctx, der, n + 2, hash, hash_len) == 1;
    }
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

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "prepare", NULL, prepare, NULL, NULL, NULL, napi_default, NULL },
    { "verify", NULL, verify, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
