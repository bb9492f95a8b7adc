// Overlay delta stream: rebuilds full messages from the server's deltas. Plain ES module,
// no DOM, so Node tests use it too. Wire format: README "Overlay protocol", deltas.
//
//   const state = deltaState();
//   ws.onmessage → const { message, resync } = state.accept(JSON.parse(text));
//   message: the full {type, timestamp, data} to draw (null when nothing to draw);
//   resync: true when a delta did not follow what this client holds (send {"type":"resync"}).

const isObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);

/** Applies one patch to a value without changing it: changed paths are copied, the rest shared. */
export function applyPatch(value, patch) {
  if (!isObject(patch)) return patch;
  if ('=' in patch) return patch['='];
  if ('o' in patch || 'd' in patch) {
    const out = isObject(value) ? { ...value } : {};
    for (const [k, p] of Object.entries(patch.o ?? {})) out[k] = applyPatch(out[k], p);
    for (const k of patch.d ?? []) delete out[k];
    return out;
  }
  if ('x' in patch) return editString(typeof value === 'string' ? value : '', patch.x);
  if ('k' in patch) return patchByPosition(value, patch.k);
  if ('c' in patch) return patchColumns(value, patch.c);
  if ('r' in patch) return fromRows(patch.r);
  if ('p' in patch) {
    // A full sliding series: the new points in, as many old ones out.
    const out = (Array.isArray(value) ? value : []).concat(patch.p);
    return out.slice(out.length - (Array.isArray(value) ? value.length : patch.p.length));
  }
  let out = Array.isArray(value) ? value.slice(patch.s ?? 0) : [];
  if (patch.t !== undefined) out.length = patch.t;
  for (const [i, p] of patch.i ?? []) out[i] = applyPatch(out[i], p);
  if (patch['+']) out = out.concat(patch['+']);
  return out;
}

/** `[at, patch, …]`: `at` indexes the object's keys in sorted order, or is `[from, to]` (one replacement for each of those keys). */
function patchByPosition(value, k) {
  const out = isObject(value) ? { ...value } : {};
  const names = Object.keys(out).sort();
  for (let j = 0; j + 1 < k.length; j += 2) {
    const [from, to] = Array.isArray(k[j]) ? k[j] : [k[j], k[j]];
    for (let i = from; i <= to; i++) out[names[i]] = applyPatch(out[names[i]], k[j + 1]);
  }
  return out;
}

/**
 * `[cols, v…]`: every child (keys sorted) takes every column `[at, op]` (or `[at, op, v]`, one v
 * for all) on its field `at` (its keys sorted): `+` appends v, `p` appends v and drops the
 * first element, `+n` / `pn` the same with the n values in v, `=` sets v. The values without
 * their own come row by row, a child at a time.
 */
function patchColumns(value, [cols, ...values]) {
  const out = isObject(value) ? { ...value } : {};
  let next = 0;
  for (const name of Object.keys(out).sort()) {
    const child = isObject(out[name]) ? { ...out[name] } : {};
    const fields = Object.keys(child).sort();
    for (const [at, op, ...own] of cols) {
      const v = own.length > 0 ? own[0] : values[next++];
      const f = fields[at];
      const held = Array.isArray(child[f]) ? child[f] : [];
      const n = op.length > 1 ? Number(op.slice(1)) : 1;
      const points = n === 1 ? [v] : v;
      child[f] = op === '=' ? v : (op[0] === 'p' ? held.slice(n) : held).concat(points);
    }
    out[name] = child;
  }
  return out;
}

/** `[names, v…]`: an array of objects with the keys `names`, their values one element after another. */
function fromRows([names, ...values]) {
  const out = [];
  if (!Array.isArray(names) || names.length === 0) return out;
  for (let at = 0; at + names.length <= values.length; at += names.length) {
    out.push(Object.fromEntries(names.map((name, i) => [name, values[at + i]])));
  }
  return out;
}

/** A string edit list [at, del, ins, …]: offsets ascending into the old string. */
function editString(text, edits) {
  let out = '';
  let pos = 0;
  for (let k = 0; k + 2 < edits.length; k += 3) {
    out += text.slice(pos, edits[k]) + edits[k + 2];
    pos = edits[k] + edits[k + 1];
  }
  return out + text.slice(pos);
}

/** A delta's versions: `{s, b, p}` (base s − b), or older servers' `{seq, base, patch}`. */
function versions(delta) {
  return typeof delta?.s === 'number' ? { base: delta.s - delta.b, seq: delta.s, patch: delta.p } : { base: delta?.base, seq: delta?.seq, patch: delta?.patch };
}

/**
 * The messages of one connection, keyed as the server keys them. A full message with a
 * `key` and `seq` replaces that key's state; a delta applies to the key held at exactly the
 * version it was made from (its base: versions are unique across keys, so the base names the
 * key too); a delta that follows nothing held means a message was lost, and a resync is asked for.
 */
export function deltaState() {
  const keys = new Map(); // key → { seq, message }
  const bySeq = new Map(); // seq → key held at that version
  const hold = (key, seq, message) => {
    const was = keys.get(key);
    if (was) bySeq.delete(was.seq);
    keys.set(key, { seq, message });
    bySeq.set(seq, key);
  };
  const drop = (key) => {
    const was = keys.get(key);
    if (was) bySeq.delete(was.seq);
    keys.delete(key);
  };
  return {
    accept(msg) {
      if (msg?.type === 'delta') {
        // Older servers name the key (and the type, in `of`); the key's version must still match.
        const { base, seq, patch } = versions(msg);
        const key = typeof msg.key === 'string' ? msg.key : bySeq.get(base);
        const held = key === undefined ? undefined : keys.get(key);
        if (!held || held.seq !== base) {
          if (key !== undefined) drop(key);
          return { message: null, resync: true };
        }
        // The type is the held message's (a delta never changes it).
        const message = { type: msg.of ?? held.message.type, timestamp: msg.timestamp, data: applyPatch(held.message.data, patch) };
        hold(key, seq, message);
        return { message, resync: false };
      }
      if (msg && typeof msg.key === 'string' && typeof msg.seq === 'number') {
        const message = { type: msg.type, timestamp: msg.timestamp, data: msg.data };
        hold(msg.key, msg.seq, message);
        return { message, resync: false };
      }
      return { message: msg, resync: false };
    },
    /** A reconnect: nothing held is current any more (the server sends full state again). */
    clear() { keys.clear(); bySeq.clear(); },
    /** Current full message of every key (what a full subscriber's latest messages are). */
    messages() { return new Map([...keys].map(([k, v]) => [k, v.message])); },
    /** The key of the message a delta rebuilds (undefined when it follows nothing held). */
    keyOf(delta) { return typeof delta?.key === 'string' ? delta.key : bySeq.get(versions(delta).base); },
  };
}
