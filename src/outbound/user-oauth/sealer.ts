/**
 * What per-user OAuth seals with: an AEAD box with key ids (the composition root hands in mcp/sealed-json.ts's
 * `SealedJson`, one instance per use, each with its own key label). A port, so that outbound/ needs no import of mcp/.
 */
import type { JsonObject } from '../../lib/json-rpc.js';

export interface Sealer {
  seal(payload: JsonObject): Promise<string>;
  /** Never throws: anything not sealed by one of our keys is a reason. */
  open(
    token: string,
  ): Promise<{ readonly ok: true; readonly payload: JsonObject } | { readonly ok: false; readonly reason: string }>;
}
