/**
 * Build time only (precompile-schemas.ts, tests): the CommonJS source of Ajv "standalone" validators, stamped with
 * the fingerprint `loadPrecompiled` checks (see precompiled-schema.ts). Kept apart so the gateway never loads
 * Ajv's code generator for standalone output at start.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import standaloneCode from 'ajv/dist/standalone/index.js';
import {
  DRAFT_2020_12,
  FRAGMENT_AJV_OPTIONS,
  metaSchemaFingerprint,
  SCHEMA_AJV_OPTIONS,
  schemaFingerprint,
} from './precompiled-schema.js';

/** The standalone validator of `schema`, as `new Ajv2020(SCHEMA_AJV_OPTIONS).compile(schema)` builds it. */
export function standaloneValidatorSource(schema: Record<string, unknown>): string {
  const ajv = new Ajv2020({ ...SCHEMA_AJV_OPTIONS, code: { source: true, esm: false } });
  return stamp(ajv, ajv.compile(schema), schemaFingerprint(schema));
}

/** The standalone validator of the 2020-12 meta-schema, as an Ajv2020 with `FRAGMENT_AJV_OPTIONS` compiles it. */
export function standaloneMetaSchemaSource(): string {
  const ajv = new Ajv2020({ ...FRAGMENT_AJV_OPTIONS, code: { source: true, esm: false } });
  const meta = ajv.getSchema(DRAFT_2020_12);
  if (meta === undefined) throw new Error(`Ajv2020 has no meta-schema ${DRAFT_2020_12}`);
  return stamp(ajv, meta, metaSchemaFingerprint());
}

function stamp(ajv: Ajv2020, validate: Parameters<typeof standaloneCode.default>[1], fingerprint: string): string {
  // `.default`: the CommonJS module seen from ESM (NodeNext).
  return `${standaloneCode.default(ajv, validate)}\nmodule.exports.schemaSha256 = ${JSON.stringify(fingerprint)};\n`;
}
