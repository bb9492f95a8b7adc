/**
 * The user's templates folder, loaded once into plain descriptor data.
 *
 *   <dir>/regions.json               which parts of the frame to look at (below)
 *   <dir>/<group>/<name>.png|jpg|jpeg|webp   the images one region's cells are compared to
 *
 *   { "regions": [ { "name": "radiant", "x": 0.1, "y": 0, "w": 0.4, "h": 0.08,
 *                    "cols": 5, "rows": 1, "group": "heroes", "threshold": 0.8 } ],
 *     "offlineGroup": "offline", "offlineThreshold": 0.8 }
 *
 * x/y/w/h are fractions of the frame so one config serves every capture size; the region
 * is cut into cols x rows equal cells and every cell is compared with every image of the
 * group (the whole image stands for the whole cell). `offlineGroup` holds whole-frame
 * pictures of "offline / be right back" screens.
 *
 * The result is structured-cloneable (strings, numbers, Float32Arrays) because it is
 * handed to every analysis worker through piscina's workerData. Images are decoded here
 * with sharp (async, off the frame path); matching later is pure JS on raw bytes.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { CELL_GRID, OFFLINE_GRID_H, OFFLINE_GRID_W, describeBox, descriptorLength } from './descriptor.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'];
export const DEFAULT_REGION_THRESHOLD = 0.8;
export const DEFAULT_OFFLINE_THRESHOLD = 0.8;
/** Templates are shrunk to at most this size before describing: the descriptor is 12x12, and this bounds memory for huge files. */
const MAX_TEMPLATE_PX = 256;
const MAX_CELLS_PER_AXIS = 64;

export interface RegionConfig {
  name: string;
  x: number;
  y: number;
  w: number;
  h: number;
  cols: number;
  rows: number;
  group: string;
  threshold: number;
}

/** One group's templates: names[i] is described by vectors[i*len .. (i+1)*len) (len = grid*grid*3). */
export interface TemplateGroup {
  names: string[];
  files: string[];
  vectors: Float32Array;
}

export interface TemplateSet {
  /** Folder it came from (null for the empty set). */
  dir: string | null;
  /** Cell descriptor grid (square). */
  grid: number;
  /** Whole-frame descriptor grid for offline screens. */
  offlineGridW: number;
  offlineGridH: number;
  regions: RegionConfig[];
  groups: Record<string, TemplateGroup>;
  /** Descriptors of the offline-screen images, or null when none are configured. */
  offline: TemplateGroup | null;
  offlineThreshold: number;
}

export class TemplateConfigError extends Error {
  constructor(
    readonly file: string,
    /** The offending field, e.g. `regions[1].w`, or '' for the file as a whole. */
    readonly field: string,
    detail: string,
  ) {
    super(`templates: ${file}: ${detail}`);
    this.name = 'TemplateConfigError';
  }
}

export function emptyTemplateSet(): TemplateSet {
  return {
    dir: null, grid: CELL_GRID, offlineGridW: OFFLINE_GRID_W, offlineGridH: OFFLINE_GRID_H,
    regions: [], groups: {}, offline: null, offlineThreshold: DEFAULT_OFFLINE_THRESHOLD,
  };
}

// ------------------------------------------------------------------ regions.json schema

// Group names become folder names: no separators, no dot-dot, no hidden folders.
const GROUP_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const num = () => z.number({ required_error: 'is required', invalid_type_error: 'must be a number' });
const frac0 = () => num().min(0, 'must be in [0, 1)').lt(1, 'must be in [0, 1)');
const frac1 = () => num().gt(0, 'must be in (0, 1]').max(1, 'must be in (0, 1]');
const cells = () => num().int('must be an integer').min(1, `must be in 1 .. ${MAX_CELLS_PER_AXIS}`).max(MAX_CELLS_PER_AXIS, `must be in 1 .. ${MAX_CELLS_PER_AXIS}`);
const threshold = () => num().gt(0, 'must be in (0, 1]').max(1, 'must be in (0, 1]');
const groupName = () => z.string({ required_error: 'is required', invalid_type_error: 'must be a string' })
  .regex(GROUP_RE, 'must be a folder name (letters, digits, _ . -; not starting with . _ or -)');

const regionSchema = z.object({
  name: z.string({ required_error: 'is required', invalid_type_error: 'must be a string' })
    .min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
  x: frac0(),
  y: frac0(),
  w: frac1(),
  h: frac1(),
  cols: cells().default(1),
  rows: cells().default(1),
  group: groupName(),
  threshold: threshold().default(DEFAULT_REGION_THRESHOLD),
}, { invalid_type_error: 'must be an object' }).strict();

const configSchema = z.object({
  regions: z.array(regionSchema, { required_error: 'is required', invalid_type_error: 'must be an array' }),
  offlineGroup: groupName().optional(),
  offlineThreshold: threshold().default(DEFAULT_OFFLINE_THRESHOLD),
}, { invalid_type_error: 'must be an object' }).strict().superRefine((cfg, ctx) => {
  // Checks across fields, after each field is valid on its own.
  const seen = new Map<string, number>();
  cfg.regions.forEach((r, i) => {
    // 1e-9: fractions like 0.6 + 0.4 do not add to exactly 1 in binary
    if (r.x + r.w > 1 + 1e-9) ctx.addIssue({ code: 'custom', path: ['regions', i, 'w'], message: `reaches past the right edge (x + w = ${r.x + r.w} > 1)` });
    if (r.y + r.h > 1 + 1e-9) ctx.addIssue({ code: 'custom', path: ['regions', i, 'h'], message: `reaches past the bottom edge (y + h = ${r.y + r.h} > 1)` });
    const prev = seen.get(r.name);
    if (prev !== undefined) ctx.addIssue({ code: 'custom', path: ['regions', i, 'name'], message: `"${r.name}" is already used by regions[${prev}]` });
    else seen.set(r.name, i);
  });
});

function fieldPath(p: ReadonlyArray<string | number>): string {
  let s = '';
  for (const k of p) s += typeof k === 'number' ? `[${k}]` : s === '' ? k : `.${k}`;
  return s;
}

function describeIssue(issue: z.ZodIssue): { field: string; text: string } {
  const field = fieldPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    return { field, text: `${field === '' ? 'top level' : field} has unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}` };
  }
  return { field, text: `${field === '' ? 'the file' : field} ${issue.message}` };
}

/** Validates parsed regions.json content; throws TemplateConfigError listing every problem. */
export function parseRegionsConfig(raw: unknown, file: string): z.infer<typeof configSchema> {
  const res = configSchema.safeParse(raw);
  if (res.success) return res.data;
  const issues = res.error.issues.map(describeIssue);
  throw new TemplateConfigError(file, issues[0].field, issues.map((i) => i.text).join('; '));
}

// ------------------------------------------------------------------ images

function isImage(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

async function exists(p: string): Promise<'dir' | 'file' | null> {
  try {
    const s = await stat(p);
    return s.isDirectory() ? 'dir' : 'file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Describes one template image into out[offset ..]; every failure names the file. */
async function describeImage(file: string, gw: number, gh: number, out: Float32Array, offset: number): Promise<void> {
  let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    decoded = await sharp(file, { failOn: 'error' })
      .resize({ width: MAX_TEMPLATE_PX, height: MAX_TEMPLATE_PX, fit: 'inside', withoutEnlargement: true })
      // Transparent pixels become black: portraits with cut-out corners then match a
      // dark HUD background, which is the common case.
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new TemplateConfigError(file, '', `cannot decode image: ${(err as Error).message}`);
  }
  const { data, info } = decoded;
  if (info.channels < 3) throw new TemplateConfigError(file, '', `decoded to ${info.channels} channel(s), expected RGB`);
  describeBox(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height, info.channels,
    { x: 0, y: 0, w: info.width, h: info.height }, gw, gh, out, offset);
}

/** Loads every image of one group folder. `what` names the config field that asked for it. */
async function loadGroup(dir: string, group: string, gw: number, gh: number, configFile: string, what: string): Promise<TemplateGroup> {
  const folder = path.join(dir, group);
  const kind = await exists(folder);
  if (kind !== 'dir') {
    throw new TemplateConfigError(configFile, what, `${what} "${group}": folder ${folder} ${kind === null ? 'does not exist' : 'is not a folder'}`);
  }
  const entries = (await readdir(folder, { withFileTypes: true }))
    .filter((e) => e.isFile() && isImage(e.name))
    .map((e) => e.name)
    .sort();
  if (entries.length === 0) {
    throw new TemplateConfigError(configFile, what, `${what} "${group}": folder ${folder} has no images (${IMAGE_EXTENSIONS.join(' ')})`);
  }
  const names: string[] = [];
  const files: string[] = [];
  const len = descriptorLength(gw, gh);
  const vectors = new Float32Array(entries.length * len);
  for (const [i, entry] of entries.entries()) {
    const name = path.basename(entry, path.extname(entry));
    const twin = names.indexOf(name);
    if (twin >= 0) throw new TemplateConfigError(path.join(folder, entry), '', `template name "${name}" is also used by ${files[twin]}`);
    const file = path.join(folder, entry);
    // One at a time: sharp already uses its own thread pool, and sequential loading keeps
    // at most one decoded image in memory.
    await describeImage(file, gw, gh, vectors, i * len);
    names.push(name);
    files.push(file);
  }
  return { names, files, vectors };
}

/**
 * Loads `<dir>/regions.json` and the images it refers to. A missing folder, or a folder
 * with neither regions.json nor image subfolders, is the empty set (nothing configured);
 * everything else that is wrong throws TemplateConfigError naming the file and field.
 */
export async function loadTemplateSet(dir: string): Promise<TemplateSet> {
  const root = path.resolve(dir);
  const kind = await exists(root);
  if (kind === null) return emptyTemplateSet();
  if (kind !== 'dir') throw new TemplateConfigError(root, '', 'templates path is not a folder');
  const file = path.join(root, 'regions.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TemplateConfigError(file, '', `cannot read: ${(err as Error).message}`);
    // Images but no regions.json is a half-done setup; say so rather than silently match nothing.
    for (const e of await readdir(root, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const images = (await readdir(path.join(root, e.name))).filter(isImage);
      if (images.length > 0) throw new TemplateConfigError(file, '', `missing, but ${path.join(root, e.name)} holds template images`);
    }
    return emptyTemplateSet();
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TemplateConfigError(file, '', `not valid JSON: ${(err as Error).message}`);
  }
  const cfg = parseRegionsConfig(raw, file);

  const set = emptyTemplateSet();
  set.dir = root;
  set.offlineThreshold = cfg.offlineThreshold;
  set.regions = cfg.regions.map((r) => ({ ...r }));
  for (const [i, r] of cfg.regions.entries()) {
    if (Object.hasOwn(set.groups, r.group)) continue;
    set.groups[r.group] = await loadGroup(root, r.group, CELL_GRID, CELL_GRID, file, `regions[${i}].group`);
  }
  if (cfg.offlineGroup !== undefined) {
    set.offline = await loadGroup(root, cfg.offlineGroup, OFFLINE_GRID_W, OFFLINE_GRID_H, file, 'offlineGroup');
  }
  return set;
}
