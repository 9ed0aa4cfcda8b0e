// Test PKI made with the openssl command line (ECDSA P-256, 30 days): CAs, server/client
// certificates signed by them, self-signed "rogue" certificates, and CRLs (openssl ca).
import { execFileSync } from 'node:child_process';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from './procs.js';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
}

export interface TestCa {
  name: string;
  dir: string;
  keyFile: string;
  certFile: string;
  /** PEM text of the CA certificate. */
  cert: string;
}

export interface TestCert {
  name: string;
  keyFile: string;
  certFile: string;
  key: string;
  cert: string;
}

/** A self-signed CA with an `openssl ca` database so it can revoke and issue CRLs. */
export function makeCa(dir: string, name: string, cn = `${name} Test CA`): TestCa {
  const caDir = join(dir, name);
  mkdirSync(caDir, { recursive: true });
  writeFileSync(join(caDir, 'index.txt'), '');
  writeFileSync(join(caDir, 'crlnumber'), '01\n');
  writeFileSync(join(caDir, 'ca.cnf'), [
    '[ca]', 'default_ca = local',
    '[local]',
    `dir = ${caDir}`,
    'database = $dir/index.txt', 'crlnumber = $dir/crlnumber',
    'certificate = $dir/ca.pem', 'private_key = $dir/ca.key',
    'default_md = sha256', 'default_crl_days = 30', 'default_days = 30',
    'policy = any', 'new_certs_dir = $dir', 'unique_subject = no',
    '[any]', 'commonName = supplied', '',
  ].join('\n'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', `/CN=${cn}`], caDir);
  return { name, dir: caDir, keyFile: join(caDir, 'ca.key'), certFile: join(caDir, 'ca.pem'), cert: readFileSync(join(caDir, 'ca.pem'), 'utf8') };
}

/** A leaf certificate for `cn`, usable as TLS server and client, with SANs. */
export function issueCert(ca: TestCa, name: string, opts: { subject?: string; san?: string[] } = {}): TestCert {
  const dir = ca.dir;
  const san = opts.san ?? ['DNS:localhost', `DNS:${name}.sbc.test`, 'IP:127.0.0.1'];
  const subject = opts.subject ?? `/O=Peergate Test/CN=${name}.sbc.test`;
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '30', '-extfile', `${name}.ext`], dir);
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  return { name, keyFile, certFile, key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
}

/** A self-signed certificate no CA vouches for. */
export function selfSigned(dir: string, name: string): TestCert {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1'], dir);
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  return { name, keyFile, certFile, key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
}

/** Revoke `certs` (may be empty) and return the CA's current CRL (PEM). */
export function makeCrl(ca: TestCa, revoke: TestCert[] = []): string {
  for (const c of revoke) openssl(['ca', '-config', 'ca.cnf', '-revoke', c.certFile], ca.dir);
  const out = join(ca.dir, 'crl.pem');
  openssl(['ca', '-config', 'ca.cnf', '-gencrl', '-out', out], ca.dir);
  return readFileSync(out, 'utf8');
}

export interface TestPki {
  dir: string;
  ca: TestCa;
  server: TestCert;
  client: TestCert;
  /** Signed by a different CA that the server does not trust. */
  otherCa: TestCa;
  untrusted: TestCert;
  rogue: TestCert;
}

/** The usual set for a test file: one trusted CA with server+client, an untrusted CA's client, a rogue. */
export function makePki(dir = scratchDir('pki-')): TestPki {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  const ca = makeCa(dir, 'ca', 'Peergate Test CA');
  const server = issueCert(ca, 'server');
  const client = issueCert(ca, 'client', { san: ['DNS:client.sbc.test', 'IP:127.0.0.1', 'URI:sip:peer.sbc.test'] });
  const otherCa = makeCa(dir, 'other', 'Other Test CA');
  const untrusted = issueCert(otherCa, 'stranger');
  const rogue = selfSigned(dir, 'rogue');
  return { dir, ca, server, client, otherCa, untrusted, rogue };
}

/**
 * A SIP UA on one TLS connection to 127.0.0.1:`port` (SNI localhost): `request` writes a whole
 * message and resolves with the next final response read on the connection, or rejects after
 * 8 s or when the connection closes. Requests toward the UA get 200 when `answerRequests`
 * (the in-dialog requests a peer would answer), else are ignored.
 */
export class TlsSipUa {
  private buf = '';
  private waiters: Array<(m: string) => void> = [];
  readonly closed: Promise<void>;
  private constructor(readonly sock: TLSSocket, private readonly answerRequests: boolean) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (;;) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/^Content-Length:\s*(\d+)/im.exec(this.buf.slice(0, end))?.[1] ?? 0);
        if (this.buf.length < end + 4 + len) return;
        const msg = this.buf.slice(0, end + 4 + len);
        this.buf = this.buf.slice(end + 4 + len);
        if (/^SIP\/2\.0 1\d\d/.test(msg)) continue;
        if (!msg.startsWith('SIP/2.0')) { if (this.answerRequests) this.answer(msg); continue; }
        this.waiters.shift()?.(msg);
      }
    });
    this.closed = new Promise((r) => sock.once('close', () => r()));
    sock.on('error', () => undefined);
  }

  /** Resolves once the client side of the handshake is done (TLS 1.3: the server may still refuse the certificate). */
  static open(port: number, client: TestCert, ca: TestCa, o: { answerRequests?: boolean } = {}): Promise<TlsSipUa> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, key: client.key, cert: client.cert, ca: ca.cert, servername: 'localhost' },
        () => resolve(new TlsSipUa(s, o.answerRequests ?? true)));
      s.once('error', reject);
    });
  }

  get local(): string { return `127.0.0.1:${this.sock.localPort}`; }

  private answer(req: string): void {
    const hdr = (n: string) => new RegExp(`^${n}:.*$`, 'im').exec(req)?.[0] ?? '';
    this.sock.write(`SIP/2.0 200 OK\r\n${hdr('Via')}\r\n${hdr('From')}\r\n${hdr('To')}\r\n${hdr('Call-ID')}\r\n${hdr('CSeq')}\r\nContent-Length: 0\r\n\r\n`);
  }

  request(text: string): Promise<string> {
    const got = new Promise<string>((resolve, reject) => {
      this.waiters.push(resolve);
      const t = setTimeout(() => reject(new Error('no final response')), 8000);
      void this.closed.then(() => { clearTimeout(t); reject(new Error('connection closed')); });
    });
    this.sock.write(text);
    return got;
  }
}
