/**
 * The sources of truth the references are generated from. Each path is written once, here; the metrics code is the
 * one expected to move (src/audit/ → src/telemetry/): change the import and `METRICS_SOURCE` below together
 * (test/unit/generated-docs.test.ts checks that the file named exports the table).
 */
export { ErrorCodes } from '../../src/errors/codes.js';
export { METRICS } from '../../src/telemetry/metrics.js';

export const METRICS_SOURCE = 'src/telemetry/metrics.ts';
export const ERRORS_SOURCE = 'src/errors/codes.ts';
export const CONFIG_SCHEMA = 'schemas/gatehouse.schema.json';
export const POLICY_SCHEMA = 'schemas/policy.schema.json';

/** Where the generated files go; everything in it is generated (`npm run docs:check` reports anything else). */
export const REFERENCE_DIR = 'docs/reference';
