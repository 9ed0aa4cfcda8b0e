// Public surface of the SIP message module.
export * from './types.js';
export { parseMessage, FAILURE_REASONS, STATUS_BAD_REQUEST, STATUS_ENTITY_TOO_LARGE, STATUS_URI_TOO_LONG, STATUS_MESSAGE_TOO_LARGE, STATUS_VERSION_NOT_SUPPORTED } from './parser.js';
export { serialize } from './serialize.js';
export { getHeader, getHeaders, getHeaderList, hasHeader, setHeader, removeHeaders, addHeader, canonicalName, displayName } from './headers.js';
export { COMPACT_FORMS, LIST_HEADERS } from './names.js';
// The value readers (URI, name-addr, tags, Via, CSeq, params, lists) are the SIP grammar's:
// import them from src/sip/grammar.
