/**
 * Structural diff of two JSON values, as the patch format the overlay delta stream carries
 * (applied by overlay/lib/delta-state.js; README "Overlay protocol", deltas).
 *
 * A patch P turns a value `a` into `b`:
 *   - a number, string, boolean, null or array: `b` is P itself (replacement);
 *   - `{"=": v}`: `b` is v (replacement of an object, or of anything by an object);
 *   - `{"o": {k: P_k}, "d": [k…]}`: an object patched key by key (P_k applied to a[k], or to
 *     undefined for a new key), keys in `d` deleted; keys in neither unchanged;
 *   - `{"s": n, "t": len, "i": [[idx, P]…], "+": [v…]}`: an array: drop the first n elements
 *     (a sliding series), cut to len, patch elements idx of that, append the `+` values.
 *     Every field optional.
 * The diff is made once per published message, never per client.
 */
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Patch = Json;

function isObject(x: unknown): x is Record<string, Json> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) if (!(k in b) || !jsonEqual(a[k], b[k])) return false;
    return true;
  }
  return false;
}

/** A replacement patch for `b`. */
function replace(b: Json): Patch {
  return isObject(b) ? { '=': b } : b;
}

/** The patch from `a` to `b`, or undefined when they are equal. */
export function diffJson(a: Json | undefined, b: Json): Patch | undefined {
  if (a !== undefined && jsonEqual(a, b)) return undefined;
  if (isObject(a) && isObject(b)) return diffObject(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return diffArray(a, b);
  return replace(b);
}

function diffObject(a: Record<string, Json>, b: Record<string, Json>): Patch {
  const o: Record<string, Json> = {};
  const d: string[] = [];
  for (const k of Object.keys(b)) {
    const p = diffJson(k in a ? a[k] : undefined, b[k]);
    if (p !== undefined) o[k] = p;
  }
  for (const k of Object.keys(a)) if (!(k in b)) d.push(k);
  const patch: Record<string, Json> = {};
  if (Object.keys(o).length > 0) patch.o = o;
  if (d.length > 0) patch.d = d;
  return patch;
}

/** How far `b` is `a` slid forward: the least n with a[n..] a prefix of b (n = a.length when none). */
function slide(a: Json[], b: Json[]): number {
  if (b.length === 0) return a.length;
  for (let n = 0; n < a.length; n++) {
    if (a.length - n > b.length || !jsonEqual(a[n], b[0])) continue;
    let ok = true;
    for (let i = 1; i < a.length - n && ok; i++) ok = jsonEqual(a[n + i], b[i]);
    if (ok) return n;
  }
  return a.length;
}

function diffArray(a: Json[], b: Json[]): Patch {
  // A sliding window (series): shift and append, nothing else.
  const n = slide(a, b);
  if (n < a.length) {
    const patch: Record<string, Json> = {};
    if (n > 0) patch.s = n;
    if (b.length > a.length - n) patch['+'] = b.slice(a.length - n);
    return patch;
  }
  // Same positions (attention rows, top lists): patch the elements that changed.
  const keep = Math.min(a.length, b.length);
  const changes: Json[] = [];
  for (let i = 0; i < keep; i++) {
    const p = diffJson(a[i], b[i]);
    if (p !== undefined) changes.push([i, p]);
  }
  const patch: Record<string, Json> = {};
  if (b.length < a.length) patch.t = b.length;
  if (changes.length > 0) patch.i = changes;
  if (b.length > keep) patch['+'] = b.slice(keep);
  // Replacing is shorter when most elements changed.
  return changes.length > keep / 2 ? b : patch;
}
