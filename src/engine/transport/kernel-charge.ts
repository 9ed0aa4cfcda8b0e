// What a received UDP datagram costs in its socket's receive queue, as Linux charges it (the
// skb's truesize, the unit of /proc/net/udp's rx_queue and of the receive buffer's limit).
//
// Why an estimate: the kernel does not say per datagram. Measured on loopback (Linux 6.x, x86-64,
// ten datagrams of each size into a socket that does not read): 100 B → 832, 300–500 B → 1,280,
// 700–1,500 B → 2,304, 2,000 B → 2,611. That is the data area rounded up to a power of two
// (length + ≈ 400 B of headroom and shared info) plus ≈ 256 B of sk_buff, and, above a page's
// worth of small allocations, the length plus ≈ 600 B. A real NIC's driver charges its own
// buffers (often a page fragment or a whole page): the figure is then off by a constant factor,
// which a delay target calibrated on that machine absorbs. Overload control divides the queue's
// bytes by the rate of these charges to get the queueing delay (overload/queue-law.ts).
export function kernelCharge(length: number): number {
  if (length > 1600) return length + 612;
  return 2 ** (32 - Math.clz32(length + 400 - 1)) + 256;
}
