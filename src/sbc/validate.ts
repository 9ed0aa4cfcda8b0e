// Validate before routing (issue #17.1). Everything the A-leg needs to be answered is checked
// here, on the new INVITE as the B2BUA sees it, before limits reserve anything and before any
// B-leg exists. A request that fails gets a precise 4xx in peergate's own words; nothing of a
// library's or an exception's text is ever used. The engine has already enforced the message
// grammar (src/engine/message); this module checks what the call flow itself depends on.
//
// Contract: `validateInvite(view)` returns undefined (serve it) or a Refusal:
//   416 Unsupported URI Scheme        Request-URI not sip:, sips: or tel: (RFC 3261 §8.2.2.1)
//   400 Missing Contact Header        no Contact (RFC 3261 §8.1.1.8: an INVITE MUST have one)
//   400 Bad Contact Header            several Contacts, `*`, or not a name-addr/addr-spec
//   400 Unsupported Contact URI Scheme  Contact URI not sip:/sips: (the dialog's remote target)
//   400 Bad From Header / Bad To Header / Bad Call-ID Header / Bad CSeq Header / Bad Via Header
//   400 Missing Content-Type          a body without Content-Type (RFC 3261 §20.15)
//   415 Unsupported Media Type        a body that is not application/sdp, or a Content-Encoding
//                                     (with Accept: application/sdp, RFC 3261 §21.4.13)
//   400 Malformed SDP Body            application/sdp that does not parse (src/sbc/media/sdp.ts)
import type { RequestView, Refusal } from './stages.js';
import { parseSdp } from './media/sdp.js';

const LABEL = 'malformed';

// Compiled once; every INVITE goes through them.
const URI_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
/** name-addr `["display"] <uri>` or addr-spec `uri` (params after it); captures the URI. */
const NAME_ADDR = /^\s*(?:(?:"(?:[^"\\]|\\.)*"|[^<"]*?)\s*<([^<>\s]+)>|([^\s<>;,"]+))\s*(?:;.*)?$/s;
const CALL_ID = /^[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+)?$/;
const CSEQ = /^\s*(\d{1,10})\s+([A-Za-z!%*_+`'~.-]+)\s*$/;
const VIA = /^SIP\s*\/\s*2\.0\s*\/\s*[A-Za-z0-9!%*_+`'~.-]+\s+\S+/i;
const MEDIA_TYPE = /^\s*([A-Za-z0-9!#$&^_.+-]+)\s*\/\s*([A-Za-z0-9!#$&^_.+-]+)\s*(?:;.*)?$/s;

const REQUEST_URI_SCHEMES = new Set(['sip', 'sips', 'tel']);
const CONTACT_SCHEMES = new Set(['sip', 'sips']);

function bad(reason: string, status = 400): Refusal {
  return { status, reason, label: LABEL };
}

/** The URI of a name-addr or addr-spec, or undefined if it is neither. */
export function nameAddrUri(value: string): string | undefined {
  const m = NAME_ADDR.exec(value);
  const uri = m?.[1] ?? m?.[2];
  return uri && URI_SCHEME.test(uri) ? uri : undefined;
}

export function uriScheme(uri: string): string | undefined {
  return URI_SCHEME.exec(uri)?.[1]?.toLowerCase();
}

function checkNameAddr(values: string[], reason: string): Refusal | undefined {
  if (values.length !== 1 || nameAddrUri(values[0]!) === undefined) return bad(reason);
  return undefined;
}

/** Everything a new INVITE needs to be answered; undefined when it can be served. */
export function validateInvite(view: Pick<RequestView, 'uri' | 'get' | 'getAll' | 'body'>): Refusal | undefined {
  const scheme = uriScheme(view.uri);
  if (!scheme || !REQUEST_URI_SCHEMES.has(scheme)) return bad('Unsupported URI Scheme', 416);

  const contacts = view.getAll('Contact');
  if (contacts.length === 0) return bad('Missing Contact Header');
  if (contacts.length > 1 || contacts[0]!.trim() === '*') return bad('Bad Contact Header');
  const contactUri = nameAddrUri(contacts[0]!);
  if (!contactUri) return bad('Bad Contact Header');
  if (!CONTACT_SCHEMES.has(uriScheme(contactUri)!)) return bad('Unsupported Contact URI Scheme');

  const from = checkNameAddr(view.getAll('From'), 'Bad From Header');
  if (from) return from;
  const to = checkNameAddr(view.getAll('To'), 'Bad To Header');
  if (to) return to;
  const callId = view.get('Call-ID')?.trim();
  if (!callId || !CALL_ID.test(callId)) return bad('Bad Call-ID Header');
  const cseq = CSEQ.exec(view.get('CSeq') ?? '');
  // RFC 3261 §8.1.1.5: the number is below 2**31; the method is the request's.
  if (!cseq || Number(cseq[1]) >= 2 ** 31 || cseq[2] !== 'INVITE') return bad('Bad CSeq Header');
  const vias = view.getAll('Via');
  if (vias.length === 0 || !vias.every((v) => VIA.test(v))) return bad('Bad Via Header');

  return validateBody(view);
}

/** The body must be one the call flow can use: none, or a parseable application/sdp. */
export function validateBody(view: Pick<RequestView, 'get' | 'body'>): Refusal | undefined {
  if (!view.body) return undefined;
  const ct = view.get('Content-Type');
  if (!ct) return bad('Missing Content-Type');
  const mt = MEDIA_TYPE.exec(ct);
  if (!mt) return bad('Bad Content-Type Header');
  const encoding = view.get('Content-Encoding')?.trim().toLowerCase();
  if (`${mt[1]}/${mt[2]}`.toLowerCase() !== 'application/sdp' || (encoding && encoding !== 'identity')) {
    return { ...bad('Unsupported Media Type', 415), warning: 'only application/sdp bodies are accepted' };
  }
  try {
    parseSdp(view.body);
  } catch {
    return bad('Malformed SDP Body');
  }
  return undefined;
}

/** Headers that go with a 415 (RFC 3261 §21.4.13): what we do accept. */
export const ACCEPT_HEADERS: Readonly<Record<string, string>> = { Accept: 'application/sdp', 'Accept-Encoding': 'identity' };
