// Seeded mutation of SIP messages for the parser fuzz test (test/unit/message/fuzz.test.ts).

// Deterministic PRNG (mulberry32) so a failure can be replayed from its seed.
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = Buffer.from('\r\n \t:;,"<>\\%@=?[]/0123456789*\x00\xff');

export function mutate(src: Buffer, others: Buffer[], r: () => number): Buffer {
  let b = Buffer.from(src);
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const pos = Math.floor(r() * (b.length + 1));
    switch (Math.floor(r() * 8)) {
      case 0: // flip a byte
        if (b.length > 0) b[Math.min(pos, b.length - 1)] = Math.floor(r() * 256);
        break;
      case 1: // insert a syntax-significant byte
        b = Buffer.concat([b.subarray(0, pos), INTERESTING.subarray(Math.floor(r() * INTERESTING.length)).subarray(0, 1), b.subarray(pos)]);
        break;
      case 2: {
        // delete a range
        const len = Math.floor(r() * 20);
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos + len)]);
        break;
      }
      case 3: {
        // duplicate a range
        const len = Math.floor(r() * 60);
        b = Buffer.concat([b.subarray(0, pos + len), b.subarray(pos, pos + len), b.subarray(pos + len)]);
        break;
      }
      case 4: // truncate
        b = b.subarray(0, pos);
        break;
      case 5: {
        // splice in part of another fixture
        const o = others[Math.floor(r() * others.length)]!;
        const at = Math.floor(r() * o.length);
        b = Buffer.concat([b.subarray(0, pos), o.subarray(at, at + Math.floor(r() * 200)), b.subarray(pos)]);
        break;
      }
      case 6: {
        // swap two lines
        const lines = b.toString('latin1').split('\r\n');
        const i = Math.floor(r() * lines.length);
        const j = Math.floor(r() * lines.length);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        b = Buffer.from(lines.join('\r\n'), 'latin1');
        break;
      }
      default: {
        // long run of one byte (quadratic-behaviour probe)
        const c = INTERESTING[Math.floor(r() * INTERESTING.length)]!;
        b = Buffer.concat([b.subarray(0, pos), Buffer.alloc(Math.floor(r() * 3000), c), b.subarray(pos)]);
      }
    }
  }
  return b;
}

