/**
 * Typed errors: every failure fur reports carries a literal `tag` that callers narrow on,
 * plus the fields a person needs to act (which file, which setting). The message is the
 * one-line, actionable text the CLI prints.
 */
export class FurError<Tag extends string = string> extends Error {
  readonly tag: Tag;
  readonly fields: Record<string, unknown>;
  constructor(tag: Tag, message: string, fields: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.tag = tag;
    this.fields = fields;
    this.name = `FurError(${tag})`;
  }
}

export function isFurError<T extends string>(e: unknown, tag?: T): e is FurError<T> {
  return e instanceof FurError && (tag === undefined || e.tag === tag);
}
