/** Wait for `p`, but no longer than `ms` (its outcome, even a rejection, is not needed):
 *  stopping must end on time whatever a peer or a subsystem does. */
export async function within(p: Promise<unknown>, ms: number): Promise<void> {
  await valueWithin(p.catch(() => undefined), ms);
}

/** `p`'s value, or undefined if it has none within `ms` (a rejection is passed on). */
export async function valueWithin<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => { t = setTimeout(() => r(undefined), Math.max(0, ms)); })]);
  } finally {
    clearTimeout(t);
  }
}
