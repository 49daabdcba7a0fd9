/**
 * What a live view must never show: a password in a URL, the value of an environment variable
 * that holds a secret, a private key. Every string the server sends passes through `redact`.
 */

/** environment variables whose values are secrets by their names (the AWS ones, *PASSWORD*, *TOKEN*, …) */
const SECRET_NAME = /pass|secret|token|credential|private|(^|_)key($|_)|session/i;

/** Values to hide: those of secret-named variables and of the variables the command was told to read (--password-env). */
export function secretValues(env: NodeJS.ProcessEnv, named: (string | undefined)[] = []): string[] {
  const out = new Set<string>();
  for (const [name, value] of Object.entries(env)) if (value && SECRET_NAME.test(name)) out.add(value);
  for (const name of named) { const v = name === undefined ? undefined : env[name]; if (v) out.add(v); }
  // a very short value would hide ordinary text and protects nothing
  return [...out].filter((v) => v.length >= 4).sort((a, b) => b.length - a.length);
}

export function redactor(secrets: readonly string[]): (text: string) => string {
  return (text) => {
    let s = text
      .replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/@:]*):[^\s@/]*@/g, '$1:***@')
      .replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, '[private key]');
    for (const v of secrets) if (s.includes(v)) s = s.split(v).join('***');
    return s;
  };
}

/** JSON of `value` with every string redacted */
export function redactedJson(value: unknown, redact: (text: string) => string): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' ? redact(v) : v));
}
