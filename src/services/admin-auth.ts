/** The admin token check every main-thread service shares. */
import { HttpError } from '../shared/http-server.js';
import { bearerToken } from '../shared/http-router.js';
import { tokenMatcher } from '../shared/tokens.js';

/** Throws HttpError(401) unless the headers/query carry the admin token. */
export type RequireAdmin = (headers: Record<string, string>, query: URLSearchParams) => void;

export function adminGuard(adminToken: string): RequireAdmin {
  const isAdminToken = tokenMatcher(adminToken);
  return (headers, query) => {
    if (!isAdminToken(bearerToken(headers, query))) throw new HttpError(401, 'admin token required (Authorization: Bearer <admin token>)');
  };
}
