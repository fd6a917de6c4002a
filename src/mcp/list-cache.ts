import { serializeOnce } from '../lib/json-body.js';
import type { JsonObject } from '../lib/json-rpc.js';

/** The lists the front door filters per principal (each its own entry, keyed by the policy's listing key). */
export type CachedList = 'tools' | 'prompts' | 'resources' | 'resourceTemplates';

/**
 * How many filtered lists are kept (distinct sets of rules that hold × list kinds). An entry holds references
 * to the catalogue's own definitions, not copies (2,000 tools are one 16 kB array), and its JSON, serialised
 * once (lib/json-body.ts; 2,000 tools are ~0.5 MB): the entries' JSON together stays under LIST_CACHE_BYTES.
 */
export const LIST_CACHE_ENTRIES = 256;
export const LIST_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * Filtered `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list` results (docs/architecture.md
 * §4), built once per (catalogue, pin state, policy revision, listing key) instead of one policy decision per item
 * on every request. The key comes from `PolicyEngine.listingKey`: principals share an entry only when the
 * policy decides every target alike for them. Any new catalogue (a refresh after list_changed), new pin state
 * (lock or quarantine change) or policy revision empties the cache before the next answer; the objects are
 * compared by identity, both are rebuilt (never changed) on every such event. Least recently used entries go
 * first beyond `maxEntries` or `maxBytes`; a list whose JSON alone exceeds `maxBytes` is answered but not kept.
 */
export class ListCache {
  private readonly entries = new Map<string, { list: JsonObject; bytes: number }>();
  private bytes = 0;
  private catalogue: object | undefined;
  private pins: object | undefined;
  private revision: string | undefined;

  constructor(
    private readonly maxEntries: number = LIST_CACHE_ENTRIES,
    private readonly maxBytes: number = LIST_CACHE_BYTES,
  ) {}

  /**
   * The list for `key` under this generation, built with `build` (synchronously: the generation cannot change
   * in between) when absent. Without a key (an engine that cannot say who sees the same), always built.
   */
  get(
    list: CachedList,
    key: string | undefined,
    generation: { catalogue: object; pins: object; policyRevision: string },
    build: () => JsonObject,
  ): JsonObject {
    if (key === undefined) return build();
    if (
      generation.catalogue !== this.catalogue ||
      generation.pins !== this.pins ||
      generation.policyRevision !== this.revision
    ) {
      this.entries.clear();
      this.bytes = 0;
      this.catalogue = generation.catalogue;
      this.pins = generation.pins;
      this.revision = generation.policyRevision;
    }
    const k = `${list}\n${key}`;
    const hit = this.entries.get(k);
    if (hit !== undefined) {
      // Map order is insertion order: re-inserting marks the entry as the most recently used.
      this.entries.delete(k);
      this.entries.set(k, hit);
      return hit.list;
    }
    const built = build();
    // Shared by every request with this key: nothing may change it after it is built.
    for (const v of Object.values(built)) if (Array.isArray(v)) Object.freeze(v);
    Object.freeze(built);
    const bytes = serializeOnce(built);
    if (bytes > this.maxBytes) return built; // answered, not kept
    this.entries.set(k, { list: built, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
    return built;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The length of the kept lists' JSON, together. */
  get byteSize(): number {
    return this.bytes;
  }
}
