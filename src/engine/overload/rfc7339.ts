// RFC 7339 overload-control feedback in the top Via of responses.
//
// Contract: a client announces support with an `oc` parameter (no value) in the Via it adds,
// and the algorithms it supports in `oc-algo` (absent means "loss", which every implementation
// must support, §5.1). For such a request, `withFeedback` returns that Via (already stamped
// with received/rport by the core) carrying our answer (§5.2): `oc` = percentage of requests the
// client should drop, `oc-algo="loss"`, `oc-validity` = ms the value holds (0 ends overload
// control, §5.2), `oc-seq` = when the value was set (seconds.milliseconds, increasing, §5.2).
// Every response the core sends for the request echoes this Via, so the client hears it in the
// 100, the 503 and the app's final response alike. A client that supports no "loss" gets nothing.

// Built once: the oc parameters a client may have put in its Via (`oc`, `oc-algo="…"`, …).
const OC_PARAM = /;\s*oc(?:-algo|-validity|-seq)?(?:\s*=\s*(?:"[^"]*"|[^;,\s]*))?(?=;|$|\s|,)/gi;
const OC_ALGO = /;\s*oc-algo\s*=\s*(?:"([^"]*)"|([^;,\s]*))/i;
const OC_FLAG = /;\s*oc(?:\s*=|;|$|\s)/i;

/** Whether this top Via asks for overload-control feedback with the loss algorithm. */
export function wantsLossFeedback(via: string): boolean {
  if (!OC_FLAG.test(via)) return false;
  const m = OC_ALGO.exec(via);
  if (!m) return true;
  const algos = (m[1] ?? m[2] ?? '').split(',');
  for (const a of algos) if (a.trim().toLowerCase() === 'loss') return true;
  return false;
}

export interface Feedback {
  /** Percentage to drop (0–100). */
  loss: number;
  /** How long the value holds, ms (when loss > 0). */
  validityMs: number;
  /** Seconds (with ms) since the epoch when the loss took its current value. */
  seq: string;
}

/** The Via with the client's oc parameters replaced by our feedback (§5.2). */
export function withFeedback(via: string, f: Feedback): string {
  const base = via.replace(OC_PARAM, '');
  const validity = f.loss > 0 ? f.validityMs : 0;
  return `${base};oc=${f.loss};oc-algo="loss";oc-validity=${validity};oc-seq=${f.seq}`;
}

/** oc-seq for a wall-clock time in ms: `1282321615.782` (RFC 7339 §5.2). */
export function ocSeq(epochMs: number): string {
  return (epochMs / 1000).toFixed(3);
}
