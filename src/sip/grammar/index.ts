// The SIP grammar of peergate (RFC 3261 §19, §20, §25; RFC 3966; RFC 8224 §8.3): pure functions
// over header values and URIs, no engine or SBE dependency. The engine's parser validates with
// it; the transaction layer, the UA core and src/sbc read values with it. README.md says which
// reader is strict (validating) and which is lenient (for values already validated).
export type { SipUri, NameAddr, Via, CSeq } from './types.js';
export { TOKEN, isToken, isWsp, trimWsp, skipWsp, parseDigits, tokenEnd } from './chars.js';
export { parseParams, formatParams, paramValue, quote, unquote, quotedEnd, skipQuoted, equalsLower } from './params.js';
export { splitCommaList } from './list.js';
export {
  parseUri, formatUri, unescapeUri, isHost, splitHostPort, isValidUri, checkUri, schemeEnd, isUriText,
  uriHost, uriHostPort, uriUser, URI_OK, URI_INVALID, URI_WITH_HEADERS, URI_OTHER_SCHEME,
} from './uri.js';
export { parseNameAddr, formatNameAddr, isValidNameAddr, getTag, headerParam, headerParamsStart, addrSpecOf } from './nameaddr.js';
export { parseVia, formatVia, isValidVia, viaKey, viaBranch, viaSentBy, type ViaKey } from './via.js';
export { parseCSeq, parseRequestCSeq, MAX_CSEQ, MAX_REQUEST_CSEQ } from './cseq.js';
export { routingNumber, canonicalTelephoneNumber, isTelephoneShaped } from './number.js';
export { hasControlChar, controlCharIn } from './text.js';
export { KNOWN_METHODS } from './methods.js';
