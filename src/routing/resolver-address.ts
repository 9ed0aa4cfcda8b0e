// A DNS resolver's address as the policy writes it, apart from the schema (and zod): the
// routing function reads it at run time, also in B2BUA workers, which load no schema.
import { isIP } from 'node:net';

/** Parse `127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]:5353`; undefined when invalid. */
export function parseResolver(s: string): { address: string; port: number } | undefined {
  if (isIP(s) !== 0) return { address: s, port: 53 };
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([0-9.]+):(\d{1,5})$/.exec(s);
  if (!m || isIP(m[1]!) === 0) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { address: m[1]!, port } : undefined;
}
