/**
 * `--config FILE` (or $FUR_CONFIG): settings in TOML, keys named like the long options
 * (`delete-source = true`, `bwlimit = "10M"`). Keys at the top apply to every command that has
 * the option; a `[upload]`, `[watch]`, … section applies to that command only and wins over the
 * top. Options given on the command line win over both. A key no command knows is an error
 * naming the key and its line.
 */
import { readFileSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { parse, TomlError } from 'smol-toml';
import { FurError } from '../errors.js';

export interface ConfigFile {
  path: string;
  text: string;
  data: Record<string, unknown>;
}

/** Where a setting came from: the line of its key in a config file. */
export interface Origin { path: string; line: number }

function bad(path: string, line: number | undefined, message: string): FurError<'config-file'> {
  return new FurError('config-file', `${path}${line ? ` line ${line}` : ''}: ${message}`, { path, line });
}

export function loadConfig(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FurError('config-file', `--config ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { path });
  }
  try {
    return { path, text, data: parse(text) as Record<string, unknown> };
  } catch (e) {
    if (e instanceof TomlError) throw bad(path, e.line, `not valid TOML: ${e.message.split('\n')[0]}`);
    throw e;
  }
}

/** The line of `key` (in `section`, or at the top), 1-based; 0 if not found. */
export function lineOf(text: string, section: string | undefined, key: string): number {
  let current: string | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const header = /^\s*\[\s*(?:"([^"]*)"|'([^']*)'|([^\]]*?))\s*\]/.exec(l);
    if (header) {
      current = (header[1] ?? header[2] ?? header[3])!.trim();
      if (section !== undefined && key === '' && current === section) return i + 1;
      continue;
    }
    if (current !== section) continue;
    const m = /^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=/.exec(l);
    if (m && (m[1] ?? m[2] ?? m[3]) === key) return i + 1;
  }
  return 0;
}

/** The option a key names: `--key`, or `--no-key` for a negatable one. */
function optionFor(cmd: Command, key: string): { option: Option; negate: boolean } | undefined {
  const option = cmd.options.find((o) => o.long === `--${key}`);
  if (option) return { option, negate: option.negate };
  const no = cmd.options.find((o) => o.long === `--no-${key}`);
  return no ? { option: no, negate: true } : undefined;
}

/** Commands that take --config. */
export function configurable(program: Command): Command[] {
  return program.commands.filter((c) => c.options.some((o) => o.long === '--config'));
}

/**
 * Put the file's settings into `cmd` where the command line left them unset; returns where each
 * came from (by long option, as the user would type it).
 */
export function applyConfig(cmd: Command, cfg: ConfigFile, program: Command): Map<string, Origin> {
  const commands = configurable(program);
  const names = new Set(commands.map((c) => c.name()));
  const origins = new Map<string, Origin>();
  const set = (section: string | undefined, key: string, value: unknown) => {
    const line = lineOf(cfg.text, section, key);
    if (key === 'config') throw bad(cfg.path, line, 'a config file cannot name another (config)');
    const found = optionFor(cmd, key);
    if (!found) {
      // a top-level key for other commands is fine; one that no command has is not
      if (section === undefined && commands.some((c) => optionFor(c, key))) return;
      throw bad(cfg.path, line, section === undefined
        ? `unknown setting '${key}'; settings are named like the long options (fur upload --help lists them)`
        : `unknown setting '${key}' for ${section}; settings are named like the long options (fur ${section} --help lists them)`);
    }
    const { option, negate } = found;
    const attr = option.attributeName();
    const source = cmd.getOptionValueSource(attr);
    if (source === 'cli' || source === 'env') return; // the command line wins
    if (source === 'config' && section === undefined) return; // a section wins over the top
    let v: unknown;
    if (option.required || option.optional) {
      if (typeof value === 'boolean' || typeof value === 'object') throw bad(cfg.path, line, `${key} takes a value, e.g. ${key} = "…" (as --${key} <${option.flags.split('<')[1]?.replace('>', '') ?? 'value'}>)`);
      v = String(value);
      if (option.argChoices && !option.argChoices.includes(v as string)) {
        throw bad(cfg.path, line, `${key} = ${JSON.stringify(value)}: use one of ${option.argChoices.join(', ')}`);
      }
    } else {
      if (typeof value !== 'boolean') throw bad(cfg.path, line, `${key} is a switch: ${key} = true or ${key} = false`);
      v = negate && option.long?.startsWith('--no-') ? !value : value;
    }
    cmd.setOptionValueWithSource(attr, v, 'config');
    origins.set(`--${key}`, { path: cfg.path, line });
  };
  const sections: [string, Record<string, unknown>][] = [];
  for (const [key, value] of Object.entries(cfg.data)) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)) {
      if (!names.has(key)) throw bad(cfg.path, lineOf(cfg.text, key, ''), `unknown section [${key}]; sections are commands: ${[...names].map((n) => `[${n}]`).join(', ')}`);
      sections.push([key, value as Record<string, unknown>]);
      continue;
    }
    set(undefined, key, value);
  }
  for (const [section, table] of sections) {
    for (const [key, value] of Object.entries(table)) {
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) throw bad(cfg.path, lineOf(cfg.text, `${section}.${key}`, ''), `[${section}.${key}]: sections do not nest`);
      if (section === cmd.name()) set(section, key, value);
      else if (!optionFor(commands.find((c) => c.name() === section)!, key)) {
        // checked against its own command, so a mistake shows whatever command runs
        throw bad(cfg.path, lineOf(cfg.text, section, key), `unknown setting '${key}' for ${section}; settings are named like the long options (fur ${section} --help lists them)`);
      }
    }
  }
  return origins;
}

/** A value fit to print: a URL's password and anything named like a secret are masked. */
export function masked(key: string, value: unknown): unknown {
  if (/(password|passphrase|secret|token)$/i.test(key)) return '***';
  if (typeof value !== 'string') return value;
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*:)([^@/\s]+)@/i, '$1***@');
}
