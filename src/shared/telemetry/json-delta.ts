/**
 * Structural diff of two JSON values, as the patch format the overlay delta stream carries
 * (applied by overlay/lib/delta-state.js; README "Overlay protocol", deltas).
 *
 * A patch P turns a value `a` into `b`:
 *   - a number, string, boolean, null or array: `b` is P itself (replacement);
 *   - `{"=": v}`: `b` is v (replacement of an object, or of anything by an object);
 *   - `{"o": {k: P_k}, "d": [k…]}`: an object patched key by key (P_k applied to a[k], or to
 *     undefined for a new key), keys in `d` deleted; keys in neither unchanged;
 *   - `{"k": [at, P, at, P, …]}`: an object with the same keys as `a`, patched by position:
 *     `at` is an index into a's keys in sorted order (code-unit order, so insertion order on
 *     either side does not matter), or `[from, to]` for keys from..to that all take the
 *     replacement P; keys not named unchanged. (Key names were most of a small patch's bytes.)
 *   - `{"s": n, "t": len, "i": [[idx, P]…], "+": [v…]}`: an array: drop the first n elements
 *     (a sliding series), cut to len, patch elements idx of that, append the `+` values.
 *     Every field optional;
 *   - `{"p": [v…]}`: a full sliding series: append the values and drop as many from the front;
 *   - `{"x": [at, del, "ins", …]}`: a string edited in place: at offset `at` of the old string
 *     (offsets ascending, all of the old string), `del` characters replaced by `ins`;
 *   - `{"c": [cols, v…]}`: an object with the same keys as `a`, every child an object with the
 *     same fields, patched as a table: `cols` is `[[at, op], …]` or `[at, op, v]`, `at` indexing
 *     the children's fields in sorted order, op `"+"` (append v to that array), `"p"` (append v
 *     and drop the first element), `"+n"` / `"pn"` (the same with the n values of the array v)
 *     or `"="` (set it to v). Then the values, row by row: for each child in sorted key order,
 *     one v per column that has none of its own (`[at, op, v]`: the same v for every child).
 *     Every child takes every column;
 *   - `{"r": [names, v…]}`: an array of objects, each with the (one or more) keys `names`,
 *     replacing the value: the values of each element in turn, in the order of `names`.
 * Where a patch of an array or a string would not be shorter than the value, the value is
 * sent instead (as rows where that is shorter). The diff is made once per published message,
 * never per client.
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
  return isObject(b) ? { '=': b } : Array.isArray(b) ? asRows(b) : b;
}

/**
 * An array of like objects (top moves, top channels) as `{"r": [names, v…]}` when that is
 * shorter: the field names once, then each element's values in that order. Else the array.
 */
function asRows(b: Json[]): Patch {
  const first = b[0];
  if (b.length < 2 || !isObject(first)) return b;
  const names = Object.keys(first);
  if (names.length === 0) return b; // rows of nothing would not say how many
  const rows: Json[] = [names];
  for (const e of b) {
    if (!isObject(e)) return b;
    const keys = Object.keys(e);
    if (keys.length !== names.length || !names.every((k) => Object.hasOwn(e, k))) return b;
    for (const k of names) rows.push(e[k]);
  }
  return smaller({ r: rows }, b);
}

/** The patch from `a` to `b`, or undefined when they are equal. */
export function diffJson(a: Json | undefined, b: Json): Patch | undefined {
  if (a !== undefined && jsonEqual(a, b)) return undefined;
  if (isObject(a) && isObject(b)) return diffObject(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return diffArray(a, b);
  if (typeof a === 'string' && typeof b === 'string') return diffString(a, b);
  return replace(b);
}

/** The patch if its JSON is shorter than the value's (or its rows'), else that (both go out as JSON). */
function smaller(patch: Patch, b: Patch): Patch {
  return JSON.stringify(patch).length < JSON.stringify(b).length ? patch : b;
}

/**
 * Words, the runs of spaces between them, and slashes: explanations change a number here and
 * there, an SFEN position a rank or two between its slashes.
 */
const TOKEN = /\s+|\/|[^\s/]+/g;
/** Token pairs an LCS may compare (the table is made once per publish; texts are a few hundred characters). */
const MAX_LCS_CELLS = 40_000;
/** Strings shorter than this are replaced: an edit list would not be shorter. */
const MIN_EDITED_STRING = 24;

function diffString(a: string, b: string): Patch {
  if (a.length < MIN_EDITED_STRING || b.length < MIN_EDITED_STRING) return b;
  // Common head and tail first, so the table covers only the middle that changed.
  let head = 0;
  const limit = Math.min(a.length, b.length);
  while (head < limit && a.charCodeAt(head) === b.charCodeAt(head)) head++;
  let tail = 0;
  while (tail < limit - head && a.charCodeAt(a.length - 1 - tail) === b.charCodeAt(b.length - 1 - tail)) tail++;
  // Edits start and end on token edges, so a changed number goes out whole ("0.0736", not "36").
  while (head > 0 && !isEdge(a, head)) head--;
  while (tail > 0 && !isEdge(a, a.length - tail)) tail--;
  const ta = a.slice(head, a.length - tail).match(TOKEN) ?? [];
  const tb = b.slice(head, b.length - tail).match(TOKEN) ?? [];
  // Same number of tokens (a long text whose numbers changed): token i becomes token i, no table.
  const inPlace = ta.length === tb.length ? { x: mergeNearEdits(a, pairedEdits(ta, tb, head)) } : undefined;
  if (ta.length * tb.length > MAX_LCS_CELLS) return inPlace ? smaller(inPlace, b) : b;
  const edits: Patch = { x: mergeNearEdits(a, tokenEdits(ta, tb, head)) };
  return smaller(inPlace ? smaller(inPlace, edits) : edits, b);
}

/** Edit list [at, del, ins, …] replacing each token of ta by the token of tb at the same place. */
function pairedEdits(ta: string[], tb: string[], offset: number): Json[] {
  const edits: Json[] = [];
  let at = offset;
  for (let i = 0; i < ta.length; i++) {
    if (ta[i] !== tb[i]) edits.push(at, ta[i].length, tb[i]);
    at += ta[i].length;
  }
  return edits;
}

/**
 * Two edits with a little unchanged text between them as one, where that is shorter: a
 * rewritten sentence shares words ("is", "the") with the old one, and an edit per piece
 * between them costs more than the shared words.
 */
function mergeNearEdits(a: string, edits: Json[]): Json[] {
  const out: Json[] = [];
  for (let k = 0; k + 2 < edits.length; k += 3) {
    const [at, del, ins] = [edits[k] as number, edits[k + 1] as number, edits[k + 2] as string];
    const n = out.length;
    if (n > 0) {
      const [pAt, pDel, pIns] = [out[n - 3] as number, out[n - 2] as number, out[n - 1] as string];
      const gap = a.slice(pAt + pDel, at);
      // Apart: `,at,del,"ins"`; together: the gap's text inside one string.
      const apart = String(at).length + String(del).length + 5;
      if (JSON.stringify(gap).length - 2 < apart) {
        out[n - 2] = pDel + gap.length + del;
        out[n - 1] = pIns + gap + ins;
        continue;
      }
    }
    out.push(at, del, ins);
  }
  return out;
}

/** True where a token starts (a change of space / not space, either side of a slash, or either end). */
function isEdge(s: string, i: number): boolean {
  if (i <= 0 || i >= s.length) return true;
  const space = (c: number) => c === 32 || c === 9 || c === 10 || c === 13;
  const a = s.charCodeAt(i - 1);
  const b = s.charCodeAt(i);
  return a === SLASH || b === SLASH || space(a) !== space(b);
}
const SLASH = 0x2f;

/** Flat edit list [at, del, ins, …] turning tokens ta into tb (offsets into the whole old string). */
function tokenEdits(ta: string[], tb: string[], offset: number): Json[] {
  const n = ta.length;
  const m = tb.length;
  // lcs[i][j]: longest common subsequence of ta[i..] and tb[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = ta[i] === tb[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const edits: Json[] = [];
  let at = offset;
  let i = 0;
  let j = 0;
  let del = 0;
  let ins = '';
  let start = at;
  const flush = () => {
    if (del > 0 || ins !== '') edits.push(start, del, ins);
    del = 0;
    ins = '';
  };
  while (i < n || j < m) {
    if (i < n && j < m && ta[i] === tb[j]) {
      flush();
      at += ta[i].length;
      i++;
      j++;
      start = at;
    } else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      ins += tb[j++];
    } else {
      del += ta[i].length;
      at += ta[i++].length;
    }
  }
  flush();
  return edits;
}

function diffObject(a: Record<string, Json>, b: Record<string, Json>): Patch {
  const names = Object.keys(a).sort();
  const bNames = Object.keys(b);
  if (bNames.length === names.length && bNames.every((k) => Object.hasOwn(a, k))) {
    const byPosition = diffByPosition(a, b, names);
    const table = diffColumns(a, b, names);
    return table !== undefined && JSON.stringify(table).length < JSON.stringify(byPosition).length ? table : byPosition;
  }
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

/**
 * Same keys: `{"k": [...]}`. Neighbouring keys that take the same new number, string, boolean
 * or null (a window's latest, mean, min and max over one point) share one range entry; relative
 * patches are never shared (each applies to its own old value).
 */
function diffByPosition(a: Record<string, Json>, b: Record<string, Json>, names: string[]): Patch {
  const k: Json[] = [];
  let runFrom = -1;
  let runTo = -1;
  let runPatch: Patch = null;
  let runJson = '';
  const flush = () => {
    if (runFrom < 0) return;
    k.push(runFrom === runTo ? runFrom : [runFrom, runTo], runPatch);
    runFrom = -1;
  };
  for (let i = 0; i < names.length; i++) {
    const p = diffJson(a[names[i]], b[names[i]]);
    if (p === undefined) { flush(); continue; }
    const json = p === null || typeof p !== 'object' ? JSON.stringify(p) : '';
    if (runFrom >= 0 && json !== '' && json === runJson && runTo === i - 1) { runTo = i; continue; }
    flush();
    runFrom = runTo = i;
    runPatch = p;
    runJson = json;
  }
  flush();
  return { k };
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
    // A full series slid by as many points as it gained: the points alone.
    if (n > 0 && b.length === a.length) return smaller({ p: b.slice(a.length - n) }, asRows(b));
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
  return smaller(patch, asRows(b));
}

/** The sorted keys of an object whose children are all objects with these same keys (in `a` and `b`), else undefined. */
function childFields(a: Record<string, Json>, b: Record<string, Json>, names: string[]): string[] | undefined {
  let fields: string[] | undefined;
  for (const name of names) {
    for (const child of [a[name], b[name]]) {
      if (!isObject(child)) return undefined;
      const keys = Object.keys(child).sort();
      if (fields === undefined) fields = keys;
      else if (keys.length !== fields.length || keys.some((k, i) => k !== fields![i])) return undefined;
    }
  }
  return fields;
}

/** True where `b` is `a` with n values appended (and, sliding, as many dropped from its front). */
function pushed(a: Json, b: Json, n: number, sliding: boolean): boolean {
  if (!Array.isArray(a) || !Array.isArray(b) || n < 1) return false;
  const drop = sliding ? n : 0;
  if (b.length !== a.length + n - drop || drop > a.length) return false;
  for (let i = 0; i < b.length - n; i++) if (!jsonEqual(a[i + drop], b[i])) return false;
  return true;
}

/** How many points every child's series gained (growing) or slid by (sliding), if the same in all; else 0. */
function pushCount(pairs: Array<[Json, Json]>, sliding: boolean): number {
  const changed = pairs.find(([a, b]) => !jsonEqual(a, b));
  if (!changed || !Array.isArray(changed[0]) || !Array.isArray(changed[1])) return 0;
  const [a, b] = changed as [Json[], Json[]];
  const n = sliding ? (a.length === b.length ? slide(a, b) : 0) : b.length - a.length;
  return n >= 1 && pairs.every(([x, y]) => pushed(x, y, n, sliding)) ? n : 0;
}

/**
 * Same keys, every child an object with the same fields: `{"c": [cols, v…]}`, one column per
 * field that changed in some child, the same operation in every child (metrics that each push
 * the same number of points onto their series and take a new trend). Only the values travel,
 * a row per child; a column whose value is the same in every child carries it once.
 */
function diffColumns(a: Record<string, Json>, b: Record<string, Json>, names: string[]): Patch | undefined {
  if (names.length === 0) return undefined;
  const fields = childFields(a, b, names);
  if (!fields) return undefined;
  const child = (o: Record<string, Json>, name: string) => o[name] as Record<string, Json>;
  const cols: Json[][] = [];
  const columnValues: Json[][] = [];
  for (let f = 0; f < fields.length; f++) {
    const field = fields[f];
    if (names.every((n) => jsonEqual(child(a, n)[field], child(b, n)[field]))) continue;
    const pairs = names.map((n): [Json, Json] => [child(a, n)[field], child(b, n)[field]]);
    const grew = pushCount(pairs, false);
    const slid = grew > 0 ? 0 : pushCount(pairs, true);
    const count = grew || slid;
    // One point is the value itself, several an array of them ("+3": three appended).
    const op = (grew ? '+' : slid ? 'p' : '=') + (count > 1 ? String(count) : '');
    const values = pairs.map(([, v]) => (count === 0 ? v : count === 1 ? (v as Json[])[(v as Json[]).length - 1] : (v as Json[]).slice(-count)));
    const first = JSON.stringify(values[0]);
    if (values.every((v) => JSON.stringify(v) === first)) cols.push([f, op, values[0]]);
    else { cols.push([f, op]); columnValues.push(values); }
  }
  if (cols.length === 0) return undefined;
  const table: Json[] = [cols];
  for (let row = 0; row < names.length; row++) for (const values of columnValues) table.push(values[row]);
  return { c: table };
}
