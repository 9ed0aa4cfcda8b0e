// Secrets kept out of the policy text. Each secret the policy knows can be written inline,
// read from a file named by its `*_file` key (first line, surrounding whitespace removed; a
// Kubernetes Secret or systemd credential mounted as a file), or taken from an environment
// variable. Only one source per secret: two are an error, never a silent precedence. The
// loader calls `resolveSecrets` after validation, so every consumer reads the inline key
// only, and a reload (SIGHUP) reads the files again, which is how a secret is rotated.
import { readFileSync } from 'node:fs';
import type { Policy } from './schema.js';

/** The environment variable of each secret (docs/policy.md, "Secrets"). */
export const SECRET_ENV = {
  redisPassword: 'PEERGATE_REDIS_PASSWORD',
  wireSecret: 'PEERGATE_WIRE_SECRET',
  adminToken: 'PEERGATE_ADMIN_TOKEN',
  tlsKeyPassphrase: 'PEERGATE_TLS_KEY_PASSPHRASE',
} as const;

/** A secret that could not be resolved; `path` names the key the operator has to fix. */
export interface SecretError { path: (string | number)[]; message: string }

/** A file that holds a secret: at most this much is read (a secret is one short line). */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };

function readSecretFile(file: string): string {
  const text = readFileSync(file, 'utf8');
  if (text.length > MAX_SECRET_FILE_BYTES) throw new Error(`${file} is larger than ${MAX_SECRET_FILE_BYTES} bytes; a secret file holds one line`);
  const line = text.split('\n', 1)[0]!.trim();
  if (line === '') throw new Error(`${file} is empty (its first line is the secret)`);
  return line;
}

/**
 * One secret from its three possible sources. `inline` and `file` are the policy's values
 * (file already absolute); returns the value, or undefined when no source gives one.
 */
function pick(
  name: string, inline: string | undefined, file: string | undefined, { env, requireFiles }: SecretSources, envName: string,
  at: { inline: (string | number)[]; file: (string | number)[] }, errors: SecretError[],
): string | undefined {
  const fromEnv = env[envName] !== undefined && env[envName] !== '' ? env[envName] : undefined;
  const given = [inline !== undefined && 'the policy', file !== undefined && `${at.file.at(-1)!}`, fromEnv !== undefined && `$${envName}`].filter(Boolean);
  if (given.length > 1) {
    errors.push({ path: file !== undefined ? at.file : at.inline, message: `${name} is given more than once (${given.join(' and ')}); keep one` });
    return undefined;
  }
  if (inline !== undefined) return inline;
  if (file !== undefined) {
    try {
      return readSecretFile(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT' && !requireFiles) return undefined;
      errors.push({ path: at.file, message: e.code === 'ENOENT' ? `file not found: ${file}` : e.code ? `cannot read ${file}: ${e.code}` : e.message });
      return undefined;
    }
  }
  return fromEnv;
}

export interface SecretSources {
  env: NodeJS.ProcessEnv;
  /** A missing secret file is an error (as for every file setting under `peergate check --check-files` and at start). */
  requireFiles: boolean;
}

/** Fill the inline secret keys of a validated (not yet frozen) policy from files and the environment. */
export function resolveSecrets(policy: Policy, sources: SecretSources = { env: process.env, requireFiles: true }): SecretError[] {
  const p = policy as Mutable<Policy>;
  const errors: SecretError[] = [];

  const ops = p.ops;
  const token = pick('the admin token', ops.admin_token, ops.admin_token_file, sources, SECRET_ENV.adminToken,
    { inline: ['ops', 'admin_token'], file: ['ops', 'admin_token_file'] }, errors);
  if (token !== undefined && token.length < 16) errors.push({ path: ['ops', ops.admin_token_file !== undefined ? 'admin_token_file' : 'admin_token'], message: 'admin token must be at least 16 characters' });
  else if (token !== undefined) ops.admin_token = token;

  const wire = p.engine.wire;
  const secret = pick('the wire secret', wire.secret, wire.secret_file, sources, SECRET_ENV.wireSecret,
    { inline: ['engine', 'wire', 'secret'], file: ['engine', 'wire', 'secret_file'] }, errors);
  if (secret !== undefined) wire.secret = secret;
  else if (!p.engine.embedded && wire.secret_file === undefined && !errors.some((e) => e.path[0] === 'engine')) {
    errors.push({ path: ['engine', 'wire', 'secret'], message: `an external drachtio-server (embedded: false) needs the wire secret (secret, secret_file or $${SECRET_ENV.wireSecret})` });
  }

  if (p.tls) {
    const pass = pick('the TLS key passphrase', p.tls.key_passphrase, p.tls.key_passphrase_file, sources, SECRET_ENV.tlsKeyPassphrase,
      { inline: ['tls', 'key_passphrase'], file: ['tls', 'key_passphrase_file'] }, errors);
    if (pass !== undefined) p.tls.key_passphrase = pass;
  }

  const redis = p.store.redis;
  if (redis) {
    const pw = pick('the Redis password', redis.password, redis.password_file, sources, SECRET_ENV.redisPassword,
      { inline: ['store', 'redis', 'password'], file: ['store', 'redis', 'password_file'] }, errors);
    if (pw !== undefined) {
      // Written where each connection mode reads it, so the store needs no change.
      const path = redis.password_file !== undefined ? ['store', 'redis', 'password_file'] : ['store', 'redis', 'password'];
      if (redis.url !== undefined) {
        const url = new URL(redis.url);
        if (url.password !== '') errors.push({ path, message: 'the Redis url already has a password; keep one' });
        // ioredis decodes the URL's userinfo; the URL setter leaves % alone, so encode first.
        else { url.password = encodeURIComponent(pw); redis.url = url.toString(); }
      } else if (redis.sentinel) {
        if (redis.sentinel.password !== undefined) errors.push({ path, message: 'store.redis.sentinel.password is also set; keep one' });
        else redis.sentinel.password = pw;
      } else if (redis.cluster) {
        if (redis.cluster.password !== undefined) errors.push({ path, message: 'store.redis.cluster.password is also set; keep one' });
        else redis.cluster.password = pw;
      }
      redis.password = pw;
    }
  }
  return errors;
}
