/**
 * The policy room (docs/architecture.md §1 ④, §4, §8): load and compile policy files, decide requests, explain
 * decisions, run fixtures. Imports nothing from fastify, the MCP SDK or ioredis.
 */
export type {
  AllowDecision,
  ArgumentViolation,
  Decision,
  DecisionInput,
  DenyDecision,
  DenyReason,
  Limits,
  PolicyEngine,
  TargetKind,
} from './decision.js';
export type { CompiledPolicy, CompiledRule } from './model.js';
export {
  compilePolicy,
  listPolicyFiles,
  loadPolicyDir,
  policyRevision,
  tryLoadPolicyDir,
  FIXTURE_SUFFIX,
  type PolicySource,
} from './compile.js';
export { decide, visible, UNTARGETED_METHODS, UNTARGETED_RULE_ID } from './decide.js';
export { CompiledPolicyEngine, reloadPolicy } from './engine.js';
export { listingKey, visibleTargets, type ListTarget } from './visibility.js';
export { explain, formatExplanation, type Explanation, type RuleExplanation } from './explain.js';
export { redactArguments, REDACTED } from './field-path.js';
export {
  describeDecision,
  fixtureInput,
  fixturePrincipal,
  formatTestReport,
  listFixtureFiles,
  loadPolicyFixtures,
  parsePolicyFixtures,
  runPolicyFixtures,
  type FixtureResult,
  type PolicyFixture,
  type PolicyTestReport,
} from './test-runner.js';
export { PermitAllPolicy } from './permit-all.js';
export {
  possibleUpstreamRequests,
  upstreamRequestOf,
  UPSTREAM_REQUEST_METHODS,
  UPSTREAM_REQUESTS,
  type UpstreamRequest,
} from './upstream-requests.js';
