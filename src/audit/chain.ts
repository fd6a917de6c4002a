/**
 * Tamper evidence for audit records: every record carries the hash of the record before it (`prevHash`) and
 * its own (`hash`), SHA-256 over its canonical JSON without `hash` — or HMAC-SHA-256 with `audit.hashChain.hmacKey`,
 * so that whoever can edit the file cannot also recompute a valid chain. Each gateway process writes its own
 * chain (`chain`: a random id per process, `seq` from 0); a restart starts a new chain whose first record
 * (`chain.start`) links to the last record found in the file, so the file stays one verifiable sequence.
 *
 * An HMAC record also carries `kid`, the id of the key that sealed it (`auditKeyId`), inside what is hashed: the
 * key may rotate while the gateway runs (src/config/secret-rotation.ts), and `gatehouse audit verify` then takes
 * every key the files were sealed with and picks each record's by its id. Records written before key ids (no
 * `kid`) verify with any of the keys given.
 */
import { createHmac, hash as oneShotHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

export type HashAlg = 'sha256' | 'hmac-sha256';

/** The `prevHash` of a first record with nothing before it. */
export const GENESIS_HASH = `sha256:${'0'.repeat(64)}`;

/** Where a chain stands: the last record's chain id, sequence number and hash. */
export interface ChainHead {
  readonly chain: string;
  readonly seq: number;
  readonly hash: string;
}

/** `alg:hex` over the record's canonical JSON (the record without its `hash` member). */
export function recordHash(record: Readonly<Record<string, unknown>>, key?: string): string {
  const { hash: _ignored, ...body } = record;
  return textHash(canonicalJson(body), key);
}

function textHash(text: string, key: string | undefined): string {
  // crypto.hash: the one-shot form, no Hash object per record.
  if (key === undefined) return `sha256:${oneShotHash('sha256', text, 'hex')}`;
  return `hmac-sha256:${createHmac('sha256', key).update(text).digest('hex')}`;
}

/**
 * The id of an HMAC key in records: 16 hex digits of HMAC-SHA-256(key, label). Derived with the key itself, so the
 * id says nothing about the key to whoever lacks it, and the same key always has the same id (no registry).
 */
export function auditKeyId(key: string): string {
  return createHmac('sha256', key).update('gatehouse audit key id').digest('hex').slice(0, 16);
}

export function hashAlgOf(hash: string): HashAlg | undefined {
  const alg = hash.slice(0, hash.indexOf(':'));
  return alg === 'sha256' || alg === 'hmac-sha256' ? alg : undefined;
}

/** The running chain of one process. Not thread-safe by design: Node runs `seal` to completion. */
export class HashChain {
  readonly id: string;
  private seq = -1;
  private prev: string;

  constructor(opts: { id: string; key?: string; previous?: string }) {
    this.id = opts.id;
    this.key = opts.key;
    this.kid = opts.key !== undefined ? auditKeyId(opts.key) : undefined;
    this.prev = opts.previous ?? GENESIS_HASH;
  }

  private key: string | undefined;
  /** The id of `key` (`kid` of each record), undefined for plain SHA-256. */
  kid: string | undefined;

  /** A rotated HMAC key: records from the next one on are sealed with it, under its id; the chain goes on. */
  setKey(key: string): void {
    this.key = key;
    this.kid = auditKeyId(key);
  }

  /** The head after the last sealed record (seq -1 before the first). */
  get head(): ChainHead {
    return { chain: this.id, seq: this.seq, hash: this.prev };
  }

  /** Back to an earlier head of this chain (a sealed record that was then not written). */
  rewind(head: ChainHead): void {
    if (head.chain !== this.id) throw new TypeError('rewind: a head of another chain');
    this.seq = head.seq;
    this.prev = head.hash;
  }

  /**
   * `seal` for a caller that serialises its records itself: `body` returns the record's canonical JSON without
   * `hash`, given the chain members; the chain advances over its hash. No copies of the record are made.
   */
  sealCanonical(body: (chain: string, seq: number, prevHash: string) => string): {
    seq: number;
    prevHash: string;
    hash: string;
  } {
    const seq = this.seq + 1;
    const prevHash = this.prev;
    const hash = textHash(body(this.id, seq, prevHash), this.key);
    this.seq = seq;
    this.prev = hash;
    return { seq, prevHash, hash };
  }

  /** Adds `chain`, `seq`, `prevHash`, `kid` (HMAC only) and `hash` to the record and advances the chain. */
  seal(record: Record<string, unknown>): Record<string, unknown> {
    const body = {
      ...record,
      chain: this.id,
      ...(this.kid !== undefined ? { kid: this.kid } : {}),
      seq: this.seq + 1,
      prevHash: this.prev,
    };
    const hash = recordHash(body, this.key);
    this.seq += 1;
    this.prev = hash;
    return { ...body, hash };
  }
}
