/** Wait for `p`, but no longer than `ms` (its outcome, even a rejection, is not needed):
 *  stopping must end on time whatever a peer or a subsystem does. */
export async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => { t = setTimeout(r, ms); })]);
  clearTimeout(t);
}
