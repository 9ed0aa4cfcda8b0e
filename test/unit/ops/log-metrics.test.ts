import { describe, it, expect } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger, callLogger, moduleLogger, setLogLevel } from '../../../src/log.js';
import { counter, gauge, responseClass, callsTotal, registry } from '../../../src/ops/metrics.js';

function sink() {
  const lines: Record<string, unknown>[] = [];
  const dest = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { dest, lines };
}

describe('log', () => {
  it('every line of a call logger carries the call id, across nested children', () => {
    const { dest, lines } = sink();
    const root = createLogger({ destination: dest, level: 'debug' });
    const call = callLogger('call-7f3a', root, { peer: 'carrier-a' });
    call.info('INVITE received');
    call.child({ stage: 'limits' }).warn('over cps');
    moduleLogger('engine', root).info('unrelated');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ call: 'call-7f3a', peer: 'carrier-a', msg: 'INVITE received' });
    expect(lines[1]).toMatchObject({ call: 'call-7f3a', stage: 'limits', msg: 'over cps' });
    expect(lines[2]).toMatchObject({ module: 'engine' });
    expect(lines[2]!.call).toBeUndefined();
  });

  it('setLogLevel filters', () => {
    const { dest, lines } = sink();
    const root = createLogger({ destination: dest });
    setLogLevel('warn', root);
    root.info('hidden');
    root.warn('shown');
    expect(lines.map((l) => l.msg)).toEqual(['shown']);
  });
});

describe('metrics', () => {
  it('counter()/gauge() return the registered metric instead of registering twice', () => {
    const a = counter('peergate_test_things_total', 'test', ['x']);
    const b = counter('peergate_test_things_total', 'test', ['x']);
    expect(b).toBe(a);
    expect(counter('peergate_calls_total', 'x', ['peer', 'direction', 'result'])).toBe(callsTotal);
    const g = gauge('peergate_test_level', 'test');
    expect(gauge('peergate_test_level', 'test')).toBe(g);
    expect(registry.getSingleMetric('peergate_test_things_total')).toBe(a);
  });

  it('responseClass', () => {
    expect(responseClass(100)).toBe('1xx');
    expect(responseClass(200)).toBe('2xx');
    expect(responseClass(486)).toBe('4xx');
    expect(responseClass(699)).toBe('6xx');
    expect(responseClass(99)).toBe('other');
    expect(responseClass(700)).toBe('other');
  });
});
