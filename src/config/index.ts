/** The configuration API: load and validate `gatehouse.yaml`, secret references, and the normalised types. */
export { loadConfig, parseConfigText } from './load.js';
export type { LoadOptions } from './load.js';
export { describeConfig } from './describe.js';
export type { JsonObject, JsonValue } from './describe.js';
export { isLoopbackHost } from './addresses.js';
export { defaultResource } from './auth-urls.js';
export { CONFIG_DEFAULTS } from './defaults.js';
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
