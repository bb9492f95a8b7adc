import { describe, expect, it } from 'vitest';
import { ClientRateLimiter, clientKey, costlyRouteGuard } from '../src/shared/rate-limit.js';
import { HttpError } from '../src/shared/http-server.js';

describe('per-client token buckets', () => {
  it('allows a burst, then refills at the rate, and says how long to wait', () => {
    const l = new ClientRateLimiter({ perMinute: 60, burst: 3 });
    const t = 1_000_000;
    expect([1, 2, 3].map(() => l.take('10.0.0.1', 1, t).ok)).toEqual([true, true, true]);
    expect(l.take('10.0.0.1', 1, t)).toEqual({ ok: false, retryAfterS: 1 });
    expect(l.take('10.0.0.2', 1, t).ok).toBe(true); // another client has its own bucket
    expect(l.take('10.0.0.1', 1, t + 1000).ok).toBe(true); // one token per second
    expect(l.take('10.0.0.1', 3, t + 1000)).toEqual({ ok: false, retryAfterS: 3 });
  });

  it('keeps at most maxClients buckets, evicting the least recently used', () => {
    const l = new ClientRateLimiter({ perMinute: 1, burst: 1, maxClients: 100 });
    for (let i = 0; i < 10_000; i++) l.take(`10.1.${i >> 8}.${i & 255}`, 1, 0);
    expect(l.size).toBe(100);
    l.take('192.168.0.1', 1, 0);
    expect(l.take('192.168.0.1', 1, 0).ok).toBe(false);
  });

  it('keys IPv6 clients by their /64 and IPv4-mapped ones as IPv4', () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe(clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'));
    expect(clientKey('2001:db8:1:2::5')).not.toBe(clientKey('2001:db8:1:3::5'));
    expect(clientKey('0000:0000:0000:0000:0000:ffff:7f00:0001')).toBe('127.0.0.1');
    expect(clientKey('0000:0000:0000:0000:0000:ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(clientKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(clientKey('10.0.0.1')).toBe('10.0.0.1');
  });

  it('the route guard throws 429 with Retry-After and counts it; in-process callers are not limited', () => {
    const counted: string[] = [];
    const guard = costlyRouteGuard({ perMinute: 60, burst: 10, refused: { inc: ({ route }) => counted.push(route) } });
    guard({ remoteAddress: '10.0.0.9' }, 'scene_preview', 10);
    let thrown: unknown;
    try { guard({ remoteAddress: '10.0.0.9' }, 'scene_preview', 10); } catch (error) { thrown = error; }
    expect(thrown).toBeInstanceOf(HttpError);
    expect((thrown as HttpError).status).toBe(429);
    expect(Number((thrown as HttpError).headers?.['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(counted).toEqual(['scene_preview']);
    for (let i = 0; i < 100; i++) guard({ remoteAddress: '' }, 'scene_preview', 10);
  });
});
