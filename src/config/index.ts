/** The configuration API: load and validate `gatehouse.yaml`, secret references, and the normalised types. */
export {
  loadConfig,
  parseConfigText,
  describeConfig,
  isLoopbackHost,
  defaultResource,
  CONFIG_DEFAULTS,
} from './load.js';
export type { LoadOptions, JsonObject, JsonValue } from './load.js';
export {
  isSecretValue,
  secretValue,
  resolveSecretRef,
  credentialKind,
  inlineSecretProblem,
  INLINE_SECRET_MESSAGE,
} from './secrets.js';
export type { SecretRef, SecretContext, SecretResult } from './secrets.js';
export type * from './types.js';
export { ConfigError, formatProblem } from '../errors/config-error.js';
export type { ConfigProblem } from '../errors/config-error.js';
