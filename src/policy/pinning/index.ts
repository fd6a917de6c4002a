/**
 * Tool pinning, the rug-pull defence (docs/architecture.md §4, §8; threat model #13, #14): hash approved tool
 * definitions into `policies/tools.lock`, quarantine what changed, show reviewers what changed, and flag
 * instruction-like or invisible text. Everything here is pure except `lock-io.ts`.
 */
export {
  toolHash,
  pinnedDefinition,
  canonicalJson,
  canonicalPretty,
  TOOL_HASH_RE,
  UNPINNED_FIELDS,
} from './tool-hash.js';
export {
  parseToolsLock,
  serializeToolsLock,
  emptyToolsLock,
  findPin,
  lockListings,
  descriptionExcerpt,
  freezeLock,
  LOCK_HEADER,
  TOOLS_LOCK_VERSION,
  DESCRIPTION_EXCERPT_LENGTH,
} from './lock-file.js';
export type { ToolPin, ToolsLock } from './lock-file.js';
export { readToolsLock, writeToolsLock } from './lock-io.js';
export type { ReadLockOptions } from './lock-io.js';
export { evaluatePins, pinKey, isQuarantined, quarantinedExposedNames, EMPTY_PIN_STATE } from './pin-state.js';
export type {
  PinMode,
  PinStatus,
  PinListing,
  ToolPinStatus,
  PinEvent,
  PinEventKind,
  PinState,
  EvaluatePinsOptions,
} from './pin-state.js';
export { planApproval } from './approve.js';
export type { ApprovalInput, ApprovalPlan, ApprovalSelection, ToolChange } from './approve.js';
export { scanListings, scanToolDefinition, scanString, DEFAULT_MAX_TEXT_LENGTH } from './description-scan.js';
export type { DescriptionFinding, TextFinding, FindingKind, ScanOptions } from './description-scan.js';
export { showInvisible, hasInvisible, decodeTagCharacters } from './visible-text.js';
