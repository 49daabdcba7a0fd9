/**
 * The capture's own metadata, as the user gives it: `--attr NAME=VALUE` (repeatable) and
 * `--metadata FILE.json`. Each becomes an attribute in the file, under /entry in the NeXus
 * layout (the root in the flat one) unless a path says where:
 *
 *   --attr operator=Ada                  a string
 *   --attr exposure_time=0.25            a number (whole numbers as int64, others as float64)
 *   --attr 'exposure_time=0.25 s'        a number and its unit: exposure_time, exposure_time_units
 *   --attr 'note="42"'                   JSON-quoted: always a string
 *   --attr sample/name=lysozyme          in group /entry/sample (created)
 *   --attr /entry/instrument/detector/description=Pilatus   anywhere, by absolute path
 *
 * A JSON file is an object: a nested object is a group, anything else an attribute (strings,
 * numbers, true/false as 1/0, flat arrays of numbers or of strings), and {"value": V, "units":
 * "U"} a value with its unit. A key starting with "/" is an absolute path.
 */
import { readFile } from 'node:fs/promises';
import { FurError } from '../errors.js';
import type { AttrValue, H5File } from '../hdf5/index.js';
import { ownedAttribute } from './nexus.js';

export type MetaValue = string | number | boolean | number[] | string[];

export interface MetadataItem {
  /** the object: an absolute path, or relative to the layout's base ('' = the base itself) */
  at: string;
  name: string;
  value: MetaValue;
  units?: string;
  /** a whole number written as a float ('5.0'): stored as float64, not int64 */
  float?: true;
  /** how the user gave it, for errors: "--attr exposure_time" or "--metadata run.json: sample.temperature" */
  origin: string;
}

function bad(origin: string, value: unknown, why: string): FurError<'bad-option'> {
  return new FurError('bad-option', `${origin}: ${why}`, { setting: origin.split(/[ :]/)[0], value });
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** a path of names: no empty, '.' or '..' parts */
function checkPath(origin: string, parts: string[], value: unknown): void {
  if (parts.some((p) => p === '' || p === '.' || p === '..')) throw bad(origin, value, `'${parts.join('/')}' is not a path of names`);
}

/** One `--attr NAME=VALUE`. */
export function parseAttr(text: string): MetadataItem {
  const eq = text.indexOf('=');
  const origin = `--attr ${eq > 0 ? text.slice(0, eq) : text}`;
  if (eq <= 0) throw bad('--attr', text, `'${text}' is not NAME=VALUE (e.g. --attr operator=Ada or --attr 'exposure_time=0.25 s')`);
  const key = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1);
  const absolute = key.startsWith('/');
  const parts = key.split('/').slice(absolute ? 1 : 0);
  checkPath(origin, parts, text);
  const name = parts.pop()!;
  const at = (absolute ? '/' : '') + parts.join('/');
  const v = raw.trim();
  if (/^".*"$/.test(v)) {
    try {
      return { at, name, value: JSON.parse(v) as string, origin };
    } catch {
      throw bad(origin, text, `${v} is not a JSON string`);
    }
  }
  const [num, unit, ...rest] = v.split(/\s+/);
  if (num !== undefined && NUMBER.test(num) && rest.length === 0) {
    const value = Number(num);
    if (!Number.isFinite(value)) throw bad(origin, text, `${num} is out of range`);
    // '5' is an integer, '5.0' and '5e0' are floats
    return { at, name, value, ...(unit !== undefined ? { units: unit } : {}), ...(/[.eE]/.test(num) ? { float: true as const } : {}), origin };
  }
  return { at, name, value: raw, origin };
}

/** The items of a --metadata JSON document. */
export function parseMetadata(file: string, text: string): MetadataItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(`--metadata ${file}`, file, `not JSON (${(e as Error).message})`);
  }
  if (!isObject(doc)) throw bad(`--metadata ${file}`, file, 'must hold a JSON object (names and values)');
  const items: MetadataItem[] = [];
  const walk = (at: string, o: Record<string, unknown>, trail: string) => {
    for (const [key, v] of Object.entries(o)) {
      const where = trail ? `${trail}.${key}` : key;
      const origin = `--metadata ${file}: ${where}`;
      const absolute = key.startsWith('/');
      const parts = key.split('/').slice(absolute ? 1 : 0);
      if (absolute && at !== '') throw bad(origin, key, 'an absolute path is allowed only at the top level');
      checkPath(origin, parts, key);
      const path = absolute ? key : at ? `${at}/${key}` : key;
      if (isObject(v) && !isValueWithUnits(v)) { walk(path, v, where); continue; }
      if (absolute || parts.length > 1) throw bad(origin, v, 'a path must name a group (its value an object)');
      const [value, units] = isObject(v) && isValueWithUnits(v) ? [v.value, v.units] : [v, undefined];
      items.push({ at, name: key, value: metaValue(origin, value), ...(units !== undefined ? { units } : {}), origin });
    }
  };
  walk('', doc, '');
  return items;
}

export async function readMetadataFile(file: string): Promise<MetadataItem[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw bad(`--metadata ${file}`, file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseMetadata(file, text);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isValueWithUnits(v: Record<string, unknown>): v is { value: unknown; units: string } {
  const keys = Object.keys(v).sort();
  return keys.length === 2 && keys[0] === 'units' && keys[1] === 'value' && typeof v.units === 'string';
}

function metaValue(origin: string, v: unknown): MetaValue {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw bad(origin, v, 'numbers must be finite');
    return v;
  }
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'number' && Number.isFinite(x))) return v as number[];
    if (v.every((x) => typeof x === 'string')) return v as string[];
    throw bad(origin, v, 'an array must hold numbers only or strings only (no nested arrays or objects)');
  }
  throw bad(origin, v, `${v === null ? 'null' : typeof v} is not a value fur stores (use a string, a number, true/false or an array)`);
}

/** Refuse what would replace an attribute fur's layout writes. `base` is where relative paths start. */
export function checkMetadata(items: MetadataItem[], base: string): void {
  for (const it of items) {
    const path = resolvePath(base, it.at);
    for (const name of it.units === undefined ? [it.name] : [it.name, `${it.name}_units`]) {
      if (ownedAttribute(path, name)) throw bad(it.origin, name, `${path === '/' ? '' : path}@${name} is written by fur itself; choose another name`);
    }
  }
}

export function resolvePath(base: string, at: string): string {
  if (at.startsWith('/')) return '/' + at.split('/').filter(Boolean).join('/');
  const joined = [base, at].filter((p) => p && p !== '/').join('/');
  return '/' + joined.split('/').filter(Boolean).join('/');
}

/** Write the items (groups created where missing); published by the next commit. */
export function applyMetadata(file: H5File, base: string, items: MetadataItem[]): void {
  checkMetadata(items, base);
  for (const it of items) {
    const path = resolvePath(base, it.at);
    if (!file.has(path)) file.createGroup(path);
    file.setAttr(path, it.name, attrValue(it.value, it.float));
    if (it.units !== undefined) file.setAttr(path, `${it.name}_units`, it.units);
  }
}

function attrValue(v: MetaValue, float?: boolean): AttrValue {
  // whole numbers are int64 (up to 2^53), unless written as floats
  if (typeof v === 'number' && (float || !Number.isSafeInteger(v))) return { dtype: 'float64', shape: [], data: [v] };
  return v;
}
