/** The normalised configuration as plain JSON (`describeConfig`). */
import { isRecord } from './load-context.js';
import { isSecretValue } from './secrets.js';
import type { GatehouseConfig } from './types.js';

/** A JSON-safe summary for logs and `gatehouse check`: the whole normalised config, secrets shown as their source. */
export function describeConfig(config: GatehouseConfig): JsonObject {
  return toJson(config) as JsonObject;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

function toJson(value: unknown): JsonValue {
  if (isSecretValue(value)) return `[secret ${value.source}]`;
  if (Array.isArray(value)) return value.map(toJson);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return null;
}
