/**
 * Build step (`npm run build`, after `tsc`): writes the standalone validators of the configuration and policy
 * schemas, and of the JSON Schema 2020-12 meta-schema, into `dist/schemas/` (see src/config/precompiled-schema.ts).
 * Run from `dist/` only: the paths are relative to this file, as the loaders' are.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import configSchema from '../../schemas/gatehouse.schema.json' with { type: 'json' };
import policySchema from '../../schemas/policy.schema.json' with { type: 'json' };
import { PRECOMPILED_VALIDATORS } from './precompiled-schema.js';
import { standaloneMetaSchemaSource, standaloneValidatorSource } from './precompiled-schema-source.js';

const outputs: [URL, string][] = [
  [PRECOMPILED_VALIDATORS.config, standaloneValidatorSource(configSchema as Record<string, unknown>)],
  [PRECOMPILED_VALIDATORS.policy, standaloneValidatorSource(policySchema as Record<string, unknown>)],
  [PRECOMPILED_VALIDATORS.metaSchema, standaloneMetaSchemaSource()],
];
for (const [file, source] of outputs) {
  fs.writeFileSync(file, source);
  process.stdout.write(`precompiled ${fileURLToPath(file)}\n`);
}
