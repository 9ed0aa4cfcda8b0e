// Value types of the SIP grammar (RFC 3261 §19.1, §20.10, §20.16, §20.42; RFC 3966).

/** RFC 3261 §19.1 URI, also used for sips: and tel: (tel: has only `user` = number and params). */
export interface SipUri {
  scheme: 'sip' | 'sips' | 'tel';
  user?: string;
  password?: string;
  /** Host as written; IPv6 references keep their brackets (`[2001:db8::1]`). */
  host: string;
  port?: number;
  /** URI parameters, names lower-cased; valueless parameters map to ''. */
  params: Map<string, string>;
  /** `?` headers of the URI, undecoded. */
  headers: Map<string, string>;
}

/** name-addr / addr-spec with header parameters (From, To, Contact, Route …). */
export interface NameAddr {
  displayName?: string;
  uri: string;
  /** Header parameters after the URI (`tag`, `expires`, …), names lower-cased. */
  params: Map<string, string>;
}

export interface Via {
  /** `SIP/2.0/UDP` → `UDP` (upper-case). */
  transport: string;
  host: string;
  port?: number;
  /** Parameters, names lower-cased; `rport` without value maps to ''. */
  params: Map<string, string>;
}

export interface CSeq {
  seq: number;
  method: string;
}
