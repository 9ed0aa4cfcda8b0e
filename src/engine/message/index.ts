// Public surface of the SIP message module.
export * from './types.js';
export { parseMessage, STATUS_BAD_REQUEST, STATUS_ENTITY_TOO_LARGE, STATUS_URI_TOO_LONG, STATUS_MESSAGE_TOO_LARGE, STATUS_VERSION_NOT_SUPPORTED } from './parser.js';
export { serialize } from './serialize.js';
export { getHeader, getHeaders, getHeaderList, hasHeader, setHeader, removeHeaders, addHeader, canonicalName, displayName } from './headers.js';
export { COMPACT_FORMS, LIST_HEADERS } from './names.js';
export { parseUri, formatUri, unescapeUri, isHost, splitHostPort, isValidUri } from './uri.js';
export { parseNameAddr, formatNameAddr, getTag, isValidNameAddr } from './nameaddr.js';
export { parseVia, formatVia, parseCSeq, MAX_CSEQ, isValidVia } from './via.js';
export { parseParams, formatParams, quote, unquote } from './params.js';
export { splitCommaList } from './list.js';
