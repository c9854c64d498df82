/**
 * Character-level vocabularies: the sorted set of distinct characters (Unicode code points) of a
 * text, mapping each to a token id (its index in that order), with a JSON form that a
 * checkpoint can carry.
 */

/** The JSON form of a CharVocabulary (see `CharVocabulary.toJSON`). */
export interface CharVocabularyJSON {
  readonly kind: 'char';
  /** The characters in id order: strictly increasing code points, one code point each. */
  readonly characters: string[];
}

const NO_ID = -1;

/** `ch` as printed in error messages: JSON-quoted (so '\n' shows) plus its code point. */
function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  return `${JSON.stringify(ch)} (U+${cp.toString(16).toUpperCase().padStart(4, '0')})`;
}

/** Whether `s` is exactly one Unicode code point. */
function isOneCodePoint(s: string): boolean {
  if (s.length === 0 || s.length > 2) return false;
  const cp = s.codePointAt(0) ?? 0;
  return s.length === (cp > 0xffff ? 2 : 1);
}

export class CharVocabulary {
  /** The characters in id order (sorted by code point, no duplicates). */
  readonly characters: readonly string[];
  /** The number of distinct characters, i.e. the number of token ids. */
  readonly size: number;
  /** Code point -> id for the Basic Multilingual Plane (NO_ID where absent). */
  private readonly bmp = new Int32Array(0x10000).fill(NO_ID);
  /** Code point -> id for characters outside the BMP. */
  private readonly astral = new Map<number, number>();

  /**
   * A vocabulary of exactly `characters`, in that order; they must be single code points in
   * strictly increasing code-point order (as `fromText` and `toJSON` produce them).
   */
  constructor(characters: readonly string[]) {
    let previous = -1;
    characters.forEach((ch, id) => {
      if (typeof ch !== 'string' || !isOneCodePoint(ch)) {
        throw new RangeError(`CharVocabulary: entry ${id} is ${JSON.stringify(ch)}, expected a single character (one code point)`);
      }
      const cp = ch.codePointAt(0) ?? 0;
      if (cp <= previous) {
        throw new RangeError(
          `CharVocabulary: entry ${id} ${describeChar(ch)} is not after entry ${id - 1} ${describeChar(characters[id - 1])}; characters must be unique and sorted by code point`,
        );
      }
      previous = cp;
      if (cp <= 0xffff) this.bmp[cp] = id;
      else this.astral.set(cp, id);
    });
    this.characters = Object.freeze([...characters]);
    this.size = characters.length;
  }

  /** The vocabulary of the distinct characters of `text`, sorted by code point. */
  static fromText(text: string): CharVocabulary {
    const seen = new Set<number>();
    for (let i = 0; i < text.length; i++) {
      const cp = text.codePointAt(i) ?? 0;
      if (cp > 0xffff) i++;
      seen.add(cp);
    }
    const sorted = [...seen].sort((a, b) => a - b);
    return new CharVocabulary(sorted.map((cp) => String.fromCodePoint(cp)));
  }

  /** Rebuilds a vocabulary from `toJSON`'s output (e.g. parsed from a checkpoint); validates it. */
  static fromJSON(value: unknown): CharVocabulary {
    if (typeof value !== 'object' || value === null) {
      throw new TypeError(`CharVocabulary.fromJSON: expected an object { kind: 'char', characters: string[] }, got ${value === null ? 'null' : typeof value}`);
    }
    const record = value as { kind?: unknown; characters?: unknown };
    if (record.kind !== 'char') {
      throw new TypeError(`CharVocabulary.fromJSON: expected kind "char", got ${JSON.stringify(record.kind) ?? 'undefined'}`);
    }
    if (!Array.isArray(record.characters)) {
      throw new TypeError('CharVocabulary.fromJSON: "characters" must be an array of single-character strings');
    }
    return new CharVocabulary(record.characters as string[]);
  }

  toJSON(): CharVocabularyJSON {
    return { kind: 'char', characters: [...this.characters] };
  }

  /** Whether `ch` (one character) has an id. */
  has(ch: string): boolean {
    return isOneCodePoint(ch) && this.idOf(ch.codePointAt(0) ?? 0) !== NO_ID;
  }

  /**
   * The token ids of `text`, one per code point. A character outside the vocabulary throws a
   * RangeError naming it and its position (the index of the character, counted in code points,
   * which is also its index in the returned array).
   */
  encode(text: string): Int32Array {
    const ids = new Int32Array(text.length);
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      const cp = text.codePointAt(i) ?? 0;
      const id = this.idOf(cp);
      if (id === NO_ID) {
        const ch = String.fromCodePoint(cp);
        throw new RangeError(`CharVocabulary.encode: character ${describeChar(ch)} at position ${n} is not in the vocabulary of ${this.size} characters`);
      }
      ids[n++] = id;
      if (cp > 0xffff) i++;
    }
    return n === ids.length ? ids : ids.slice(0, n);
  }

  /** The text of `ids` (integers in [0, size); e.g. a batch's float32 inputs or int32 labels). */
  decode(ids: ArrayLike<number>): string {
    const chars = this.characters;
    const parts: string[] = new Array<string>(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.size) {
        throw new RangeError(`CharVocabulary.decode: id ${id} at position ${i} is not a token id; expected an integer in [0, ${this.size})`);
      }
      parts[i] = chars[id];
    }
    return parts.join('');
  }

  private idOf(cp: number): number {
    return cp <= 0xffff ? this.bmp[cp] : (this.astral.get(cp) ?? NO_ID);
  }
}
