import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';

/**
 * A client's declaration narrowed to what may be declared to an upstream: a per-session upstream's initialize, and
 * the `_meta` envelope of every 2026-07-28 request (downstream caps ∩ policy, docs/protocol-2026-07-28.md §2.2).
 * Only sampling, roots and elicitation survive, so extensions (tasks) never reach an upstream. Elicitation by mode:
 * `{}` declares form only (MCP 2025-11-25 client/elicitation §Capabilities).
 */
export function commonCapabilities(client: JsonObject, declarable: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const key of ['sampling', 'roots'] as const)
    if (client[key] !== undefined && declarable[key] !== undefined) out[key] = client[key];
  const mine = client.elicitation;
  const may = declarable.elicitation;
  if (isJsonObject(mine) && isJsonObject(may)) {
    const form = isJsonObject(mine.form) ? mine.form : Object.keys(mine).length === 0 ? {} : undefined;
    const modes: JsonObject = {};
    if (form !== undefined && may.form !== undefined) modes.form = form;
    if (mine.url !== undefined && may.url !== undefined) modes.url = mine.url;
    if (Object.keys(modes).length > 0) out.elicitation = modes;
  }
  return out;
}
