// RFC 2782 target selection: lowest priority first; within one priority, a weighted random
// order in which a record's chance of coming first is its weight over the group's total
// (weight 0 records get a small chance, placed first in the running sum as the RFC says).
// Also RFC 3403 NAPTR ordering (order, then preference).
import type { NaptrRecord, SrvRecord } from './dns-client.js';

/** `random()` in [0, 1); injectable so tests can check the distribution and the order. */
export function orderSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  // "." as target: the service is decidedly not available at this domain (RFC 2782).
  const usable = records.filter((r) => r.target !== '' && r.target !== '.');
  const priorities = [...new Set(usable.map((r) => r.priority))].sort((a, b) => a - b);
  const out: SrvRecord[] = [];
  for (const p of priorities) {
    const group = usable.filter((r) => r.priority === p);
    // Weight 0 entries first (RFC 2782 "Usage rules").
    group.sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (group.length > 0) {
      const total = group.reduce((s, r) => s + r.weight, 0);
      const pick = Math.floor(random() * (total + 1));
      let running = 0;
      let idx = group.length - 1;
      for (let i = 0; i < group.length; i++) {
        running += group[i]!.weight;
        if (running >= pick) { idx = i; break; }
      }
      out.push(group[idx]!);
      group.splice(idx, 1);
    }
  }
  return out;
}

/** NAPTR records in the order a client uses them: `order`, then `preference` (RFC 3403 §4.1). */
export function orderNaptr<T extends Pick<NaptrRecord, 'order' | 'preference'>>(records: readonly T[]): T[] {
  return [...records].sort((a, b) => a.order - b.order || a.preference - b.preference);
}
