// The ops HTTP server (fastify): /metrics for Prometheus, /health (the process is up),
// /ready (can take calls), and the admin API under /admin/* behind a bearer token.
// It binds to loopback unless the policy says otherwise; it never faces peers.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { registry } from './metrics.js';
import type { Ops } from '../policy/schema.js';
import { parseCidr } from '../policy/schema.js';
import { banTarget, identityBanKey, normalizeFingerprint } from '../store/ban-key.js';

export interface Readiness {
  ready: boolean;
  /** true = ok; false or a string (why) = failing. */
  checks: Record<string, boolean | string>;
}

/** A ban as the provider lists it: `address` is the store key (ban-key.ts: an address, or
 *  `tls:<fingerprint>` for a TLS identity); the API shows identity bans as `identity`. */
export interface BanEntry {
  address: string;
  /** Unix ms when the ban lapses. */
  expiresAt?: number;
  /** Milliseconds left (the store's form). */
  ttlMs?: number;
  reason?: string;
}

/** What the admin API shows and changes; each is optional (absent → 501). */
export interface AdminProviders {
  peers?: () => unknown;
  calls?: () => unknown;
  /** Probed next hops and whether they are up (docs/routing.md). */
  targets?: () => unknown;
  /** Bans by store key: a source address, or a TLS identity's `tls:<fingerprint>` (ban-key.ts). */
  bans?: {
    list(): BanEntry[] | Promise<BanEntry[]>;
    add(key: string, ttlMs: number, reason?: string): void | Promise<void>;
    /** false when there was no such ban. */
    remove(key: string): boolean | Promise<boolean>;
  };
  /**
   * Reload the policy now. `ok: false` (422) when the file or its material was refused, with
   * the errors (`file:line:column: key: message`); `restart_needed` lists keys that changed but
   * only take effect after a restart.
   */
  reload?: () => ReloadAnswer | Promise<ReloadAnswer>;
  /** Start a graceful drain (as SIGTERM does); answers what the drain looks like now. */
  drain?: () => DrainAnswer | Promise<DrainAnswer>;
}

export interface ReloadAnswer {
  ok: boolean;
  errors?: string[];
  restart_needed?: string[];
  [more: string]: unknown;
}

export interface DrainAnswer {
  draining: boolean;
  calls: number;
  /** Unix ms at which remaining calls get BYE. */
  deadline?: number;
}

export interface OpsServerOptions {
  address?: string;
  port: number;
  /** Without a token every /admin/* request is 401. A function is asked per request (the token follows policy reloads). */
  adminToken?: string | (() => string | undefined);
  ready: () => Promise<Readiness>;
  /** A readiness check that takes longer than this counts as failing (default 2000 ms). */
  readyTimeoutMs?: number;
  admin?: AdminProviders;
  /** The /metrics text; default: this process's registry (workers: the aggregate, src/app/workers). */
  metrics?: () => Promise<string>;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

/** The admin token from the policy: inline, or the first line of admin_token_file. */
export function resolveAdminToken(ops: Pick<Ops, 'admin_token' | 'admin_token_file'>): string | undefined {
  if (ops.admin_token !== undefined) return ops.admin_token;
  if (ops.admin_token_file === undefined) return undefined;
  const token = readFileSync(ops.admin_token_file, 'utf8').split('\n')[0]!.trim();
  if (token.length < 16) throw new Error(`${ops.admin_token_file}: admin token must be at least 16 characters`);
  return token;
}

const MAX_BAN_TTL_S = 30 * 24 * 3600;
const FINGERPRINT_ERROR = 'identity must be a certificate\'s SHA-256 fingerprint (64 hex digits, colons optional)';
const Fingerprint = z.string().transform((s, ctx) => normalizeFingerprint(s) ?? (ctx.addIssue({ code: 'custom', message: FINGERPRINT_ERROR }), z.NEVER));
type BanTargetFields = { address?: string | undefined; identity?: string | undefined };
/** A ban names a source address or CIDR, or a TLS peer identity (issue #17.4): exactly one. */
const oneTarget = (b: BanTargetFields) => (b.address === undefined) !== (b.identity === undefined);
const ONE_TARGET = { error: 'give either address or identity' };
const BanBody = z.strictObject({
  address: z.string().refine((s) => parseCidr(s) !== undefined, { error: 'address must be an IP address or CIDR' }).optional(),
  identity: Fingerprint.optional(),
  ttl_s: z.number().int().min(1).max(MAX_BAN_TTL_S, `ttl_s must be at most ${MAX_BAN_TTL_S}`).default(3600),
  reason: z.string().max(200).optional(),
}).refine(oneTarget, ONE_TARGET);
const UnbanBody = z.strictObject({ address: z.string().min(1).optional(), identity: Fingerprint.optional() }).refine(oneTarget, ONE_TARGET);

/** The store key a ban body names. */
const banKey = (b: BanTargetFields): string => (b.identity !== undefined ? identityBanKey(b.identity) : b.address!);

/** How the API shows a ban: identity bans by their fingerprint, not by their store key. */
function showBan(b: BanEntry): Record<string, unknown> {
  const t = banTarget(b.address);
  const { address: _key, ...rest } = b;
  return t.kind === 'identity' ? { identity: t.fingerprint256, ...rest } : { address: t.address, ...rest };
}

function badRequest(reply: FastifyReply, err: z.ZodError): FastifyReply {
  const message = err.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
  return reply.code(400).send({ error: 'bad request', message });
}

// Hash both sides so the comparison is constant-time whatever the lengths.
function tokenMatches(given: string, expected: Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), expected);
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  const digestOf = (t: string | undefined) => (t ? createHash('sha256').update(t).digest() : undefined);
  const tokenSource = opts.adminToken;
  let lastToken: string | undefined;
  let lastDigest: Buffer | undefined;
  const expectedDigest = (): Buffer | undefined => {
    const t = typeof tokenSource === 'function' ? tokenSource() : tokenSource;
    if (t !== lastToken) { lastToken = t; lastDigest = digestOf(t); }
    return lastDigest;
  };
  const admin = opts.admin ?? {};

  // Bad JSON and the like are the client's fault: 400 with fastify's message, never a 500 stack.
  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return reply.code(code).send({ error: code === 500 ? 'internal error' : 'bad request', ...(code === 500 ? {} : { message: err.message }) });
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return opts.metrics ? opts.metrics() : registry.metrics();
  });

  app.get('/health', async () => ({ status: 'ok', uptime_s: Math.round(process.uptime()) }));

  app.get('/ready', async (_req, reply) => {
    let r: Readiness;
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = opts.readyTimeoutMs ?? 2000;
    try {
      // A hung dependency must not hang the probe: it is "not ready", said promptly.
      r = await Promise.race([
        opts.ready(),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs); }),
      ]);
    } catch (err) {
      r = { ready: false, checks: { ready: `check failed: ${(err as Error).message}` } };
    } finally {
      clearTimeout(timer);
    }
    return reply.code(r.ready ? 200 : 503).send(r);
  });

  await app.register(async (scope) => {
    scope.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      const auth = req.headers.authorization;
      const given = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
      const expected = expectedDigest();
      if (!expected || given === undefined || !tokenMatches(given, expected)) {
        return reply.code(401).header('www-authenticate', 'Bearer realm="peergate-admin"').send({ error: 'unauthorized' });
      }
    });

    const unavailable = (reply: FastifyReply) => reply.code(501).send({ error: 'not available in this process' });

    scope.get('/peers', async (_req, reply) => (admin.peers ? { peers: await admin.peers() } : unavailable(reply)));
    scope.get('/calls', async (_req, reply) => (admin.calls ? { calls: await admin.calls() } : unavailable(reply)));
    scope.get('/targets', async (_req, reply) => (admin.targets ? { targets: await admin.targets() } : unavailable(reply)));

    scope.get('/bans', async (_req, reply) => (admin.bans ? { bans: (await admin.bans.list()).map(showBan) } : unavailable(reply)));
    scope.post('/bans', async (req, reply) => {
      if (!admin.bans) return unavailable(reply);
      const body = BanBody.safeParse(req.body ?? {});
      if (!body.success) return badRequest(reply, body.error);
      await admin.bans.add(banKey(body.data), body.data.ttl_s * 1000, body.data.reason);
      const target = body.data.identity !== undefined ? { identity: body.data.identity } : { address: body.data.address };
      return reply.code(201).send({ banned: body.data.address ?? body.data.identity, ...target, ttl_s: body.data.ttl_s });
    });
    const unban = async (target: BanTargetFields, reply: FastifyReply) => {
      if (!admin.bans) return unavailable(reply);
      if (target.address !== undefined && parseCidr(target.address) === undefined && isIP(target.address) === 0) {
        return reply.code(400).send({ error: 'bad request', message: 'address must be an IP address or CIDR' });
      }
      const removed = await admin.bans.remove(banKey(target));
      return removed ? reply.code(204).send() : reply.code(404).send({ error: `no ban for ${target.address ?? `identity ${target.identity}`}` });
    };
    scope.delete('/bans', async (req, reply) => {
      const body = UnbanBody.safeParse(req.body ?? {});
      if (!body.success) return badRequest(reply, body.error);
      return unban(body.data, reply);
    });
    scope.delete<{ Params: { address: string } }>('/bans/:address', async (req, reply) => unban({ address: req.params.address }, reply));
    scope.delete<{ Params: { fingerprint: string } }>('/bans/identity/:fingerprint', async (req, reply) => {
      const fp = normalizeFingerprint(req.params.fingerprint);
      if (fp === undefined) return reply.code(400).send({ error: 'bad request', message: FINGERPRINT_ERROR });
      return unban({ identity: fp }, reply);
    });

    scope.post('/reload', async (_req, reply) => {
      if (!admin.reload) return unavailable(reply);
      const r = await admin.reload();
      return reply.code(r.ok ? 200 : 422).send(r);
    });
    scope.post('/drain', async (_req, reply) => {
      if (!admin.drain) return unavailable(reply);
      return reply.code(202).send(await admin.drain());
    });
  }, { prefix: '/admin' });

  await app.listen({ host: opts.address ?? '127.0.0.1', port: opts.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return { port, close: () => app.close() };
}
