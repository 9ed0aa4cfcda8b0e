// Wire spec §7.4–§7.5: what of an app's headers reaches the network, and the Content-Type rule.
import type { AppMessage } from './app-message.js';
import { appHeader } from './app-message.js';
import { APP_FORBIDDEN } from './build.js';
import type { OutMessage } from './outgoing.js';

/** Content-Type rule of spec §7.4: the app's, else application/sdp for a `v=0` body, else fail. */
export function contentType(m: AppMessage): { ok: true; value: string | undefined } | { ok: false } {
  const ct = appHeader(m, 'content-type');
  if (ct) return { ok: true, value: ct };
  if (m.body.length === 0) return { ok: true, value: undefined };
  if (m.body.subarray(0, 3).toString('latin1') === 'v=0') return { ok: true, value: 'application/sdp' };
  return { ok: false };
}

/** Copy the app's headers except those it cannot set (spec §7.5) and those in `skip`. */
export function addAppHeaders(out: OutMessage, m: AppMessage, skip: Set<string>): void {
  for (const h of m.headers) {
    if (APP_FORBIDDEN.has(h.name) || skip.has(h.name) || h.name === 'content-type') continue;
    out.add(h.name, h.value, h.raw);
  }
}
