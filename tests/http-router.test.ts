import { describe, expect, it } from 'vitest';
import { HttpRouter, bearerToken, type ForwardedRequest } from '../src/shared/http-router.js';
import { HttpError } from '../src/shared/http-server.js';

const req = (method: string, path: string, body = '', query = ''): ForwardedRequest => ({ method, path, query, headers: {}, body: new TextEncoder().encode(body) });

describe('main-thread router for forwarded requests', () => {
  const router = new HttpRouter()
    .get('/api/runs/:run', (r) => ({ json: { run: r.params.run, q: r.query.get('x') } }))
    .post('/api/echo', (r) => ({ json: r.json() }))
    .get('/api/fail', () => { throw new HttpError(409, 'conflict here', { why: 'test' }); })
    .get('/api/bug', () => { throw new Error('boom'); })
    .get('/files/*', (r) => ({ body: r.params['*'] }));

  it('matches parameters, query strings and wildcards', async () => {
    expect(JSON.parse(String((await router.dispatch(req('GET', '/api/runs/run%201', '', 'x=5'))).body))).toEqual({ run: 'run 1', q: '5' });
    expect((await router.dispatch(req('GET', '/files/a/b.css'))).body).toBe('a/b.css');
  });

  it('answers 404, 405, 400 (bad JSON), HttpError status and 500 without leaking the error', async () => {
    expect((await router.dispatch(req('GET', '/nope'))).status).toBe(404);
    expect((await router.dispatch(req('DELETE', '/api/echo'))).status).toBe(405);
    const bad = await router.dispatch(req('POST', '/api/echo', '{oops'));
    expect(bad.status).toBe(400);
    expect(String(bad.body)).toMatch(/not valid JSON/);
    const fail = await router.dispatch(req('GET', '/api/fail'));
    expect([fail.status, JSON.parse(String(fail.body))]).toEqual([409, { error: 'conflict here', details: { why: 'test' } }]);
    const bug = await router.dispatch(req('GET', '/api/bug'));
    expect([bug.status, String(bug.body)]).toEqual([500, '{"error":"internal server error"}']);
  });

  it('reads bearer tokens from the header or the query', () => {
    expect(bearerToken({ authorization: 'Bearer abc' })).toBe('abc');
    expect(bearerToken({}, new URLSearchParams('token=q'))).toBe('q');
    expect(bearerToken({ authorization: 'Basic zzz' })).toBeUndefined();
  });
});
