// SIP methods (RFC 3261 §7.1, §27.4): which method names peergate recognises. Anything else is
// an extension method it does not know, which a UAS answers 501 Not Implemented (§8.2.1,
// §21.5.2) — the engine passes such requests to the app so that the app can answer them.

/** RFC 3261's methods and the extensions of the IANA SIP Methods registry that peergate knows. */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'ACK', 'BYE', 'CANCEL', 'INFO', 'INVITE', 'MESSAGE', 'NOTIFY', 'OPTIONS', 'PRACK', 'PUBLISH', 'REFER',
  'REGISTER', 'SUBSCRIBE', 'UPDATE',
]);
