// Pieces of SIPp XML scenarios that the end-to-end tests share, so that each test spells out
// only the messages that make it different. SIPp keywords ([branch], [last_Via:]...) are SIPp's.

/** From of a SIPp caller whose tag identifies the call. */
export const SIPP_FROM = 'From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]';
/** From of a SIPp caller presenting +15550001. */
export const SIPP_FROM_E164 = 'From: <sip:+15550001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]';

/**
 * The ACK a SIPp caller sends: `[next_url]` (the route set of a 2xx) or, for a non-2xx final
 * response, the INVITE's Request-URI with `branch: '[branch-3]'` or the INVITE's own branch.
 */
export function sippAck(o: { uri?: string; from?: string; branch?: string; contact?: boolean; closeIndent?: string } = {}): string {
  return `  <send><![CDATA[
ACK ${o.uri ?? '[next_url]'} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=${o.branch ?? '[branch]'}
${o.from ?? SIPP_FROM}
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
${o.contact ? 'Contact: sip:sipp@[local_ip]:[local_port]\n' : ''}Max-Forwards: 70
Content-Length: 0

${o.closeIndent ?? '  '}]]></send>`;
}

/** A 200 OK to the request just received (a BYE, an UPDATE...), echoing its headers. */
export const SIPP_OK_TO_LAST = `  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

  ]]></send>`;

/** Receive a BYE whose Reason must match `reason` (the scenario fails otherwise), and answer 200. */
export function sippByeWithReason(reason: string, timeoutMs?: number): string {
  return `  <recv request="BYE"${timeoutMs === undefined ? '' : ` timeout="${timeoutMs}"`}>
    <action><ereg regexp="${reason}" search_in="hdr" header="Reason:" check_it="true" assign_to="r"/></action>
  </recv>
${SIPP_OK_TO_LAST}
  <Reference variables="r"/>`;
}

/** The head of a SIPp caller's INVITE up to Max-Forwards; the test adds its own headers and body. */
export const SIPP_INVITE_HEAD = `INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
${SIPP_FROM}
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70`;

/** An audio offer/answer with PCMU only, in SIPp keywords. */
export const SIPP_SDP_PCMU = `v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
`;

/**
 * A SIPp uac scenario of one call from "Alice" +12025550142 (at 127.0.0.2) to +14155550123,
 * the numbers the identity tests' signers sign. `final: 'call'` expects 200, then sends ACK
 * and, 200 ms later, BYE; a status expects that final response and ACKs it. `sdp` adds an
 * audio offer to the INVITE.
 */
export function sippSignedCall(o: { name: string; final: 'call' | number; sdp?: boolean }): string {
  const from = '"Alice" <sip:+12025550142@127.0.0.2>;tag=[pid]SIPpTag00[call_number]';
  const to = '<sip:+14155550123@127.0.0.1>';
  const request = (method: 'INVITE' | 'ACK' | 'BYE', cseq: number, tail: string) => `${method} sip:+14155550123@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: ${from}
To: ${to}${method === 'INVITE' ? '' : '[peer_tag_param]'}
Call-ID: [call_id]
CSeq: ${cseq} ${method}
Contact: <sip:+12025550142@[local_ip]:[local_port]>
Max-Forwards: 70
${tail}`;
  const noBody = 'Content-Length: 0\n\n';
  const offer = `Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
`;
  const send = (attrs: string, text: string) => `  <send${attrs}><![CDATA[
${text}  ]]></send>`;
  const end = o.final === 'call'
    ? `  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
${send('', request('ACK', 1, noBody))}
  <pause milliseconds="200"/>
${send(' retrans="500"', request('BYE', 2, noBody))}
  <recv response="200"/>`
    : `  <recv response="${o.final}"/>
${send('', request('ACK', 1, noBody))}`;
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="${o.name}">
${send(' retrans="500"', request('INVITE', 1, o.sdp ? offer : noBody))}
  <recv response="100" optional="true"/>
${end}
</scenario>
`;
}
