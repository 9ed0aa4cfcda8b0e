// Every dialog drachtio-srf makes passes here as it is made (an instance-level wrap of
// Srf#addDialog), before the call flow's promise continuations run. drachtio-srf acts on a
// request to a dialog as it reads it, and the 2xx's echo, the caller's ACK and a following
// request can come in one read: whatever must hear them has to be on the dialog from the start.
import type Srf from 'drachtio-srf';
import type { Dialog } from './request-view.js';

/** Call `onEvery` with each dialog `srf` makes, as it makes it. */
export function watchNewDialogs(srf: Srf, onEvery: (d: Dialog) => void): void {
  const s = srf as unknown as { addDialog(d: Dialog): void };
  const add = s.addDialog.bind(srf);
  s.addDialog = (d: Dialog) => {
    add(d);
    onEvery(d);
  };
}
