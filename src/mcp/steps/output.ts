/**
 * The output step (docs/architecture.md §4): wraps forward and checks what came back against what the upstream
 * declared — a tool's `structuredContent` against its `outputSchema` (MCP 2025-06-18 server/tools §Output Schema:
 * "Servers MUST provide structured results that conform to this schema"; a tool with an outputSchema that returns
 * no structuredContent breaks it too), a listed resource's `mimeType` against the `mimeType` of the contents read.
 * The schemas were compiled with the catalogue (router/output-schemas.ts); nothing is compiled here.
 *
 * Per upstream `outputValidation`: `enforce` fails the call with the generic GW_UPSTREAM_OUTPUT_INVALID (the audit
 * `detail` names the paths and keywords, never values), `warn` passes it and the record says `outputValid: false`
 * (a metric counts those), `off` skips the step. Results with `isError: true` are not checked, nor a 2026-07-28
 * `input_required` interim answer.
 */
import type { OutputValidationMode } from '../../config/types.js';
import { GatewayError } from '../../errors/gateway-error.js';
import { isJsonObject, type JsonObject } from '../../lib/json-rpc.js';
import { outputViolation } from '../../router/output-schemas.js';
import type { Target } from '../../router/router.js';
import type { Call, CallStep } from '../call.js';
import type { PipelineDeps } from '../pipeline.js';

export const outputStep: CallStep = {
  name: 'output',
  run(call, next) {
    const { target } = call;
    const checked =
      (target.kind === 'tool' && target.output !== undefined) ||
      (target.kind === 'resource' && typeof target.definition?.mimeType === 'string');
    if (!checked) return next(call);
    const mode = outputMode(call.deps, target.upstream);
    if (mode === 'off') return next(call);
    return next(call).then((result) => checkedResult(call, mode, result));
  },
};

function checkedResult(call: Call, mode: OutputValidationMode, result: JsonObject): JsonObject {
  // A 2026-07-28 upstream's interim answer (basic §ResultType): questions for the client, not the tool's result; the
  // retry's final result is checked when it comes (the input-required step sends it through forward again).
  if (result.resultType === 'input_required') return result;
  const violation = violationOf(call.target, result);
  const { event } = call.ctx;
  if (violation === undefined) {
    event.outputValid = true;
    return result;
  }
  event.outputValid = false;
  if (mode === 'enforce') throw new GatewayError('GW_UPSTREAM_OUTPUT_INVALID', { detail: violation });
  // Appended: an earlier step may have said something already (a fail-open limits store, say).
  const said = `output invalid (outputValidation warn): ${violation}`;
  event.detail = event.detail === undefined ? said : `${event.detail}; ${said}`;
  return result;
}

function violationOf(target: Target, result: JsonObject): string | undefined {
  if (target.kind === 'tool') return target.output === undefined ? undefined : outputViolation(target.output, result);
  return mimeTypeViolation(target, result);
}

/**
 * A listed resource declares a `mimeType`; contents returned for that same URI with another one are a violation
 * (media type compared without parameters, case-insensitively). Contents without a `mimeType`, or for other URIs
 * (a read may return several), are not judged: the check is the cheap one the listing makes possible.
 */
function mimeTypeViolation(target: Target, result: JsonObject): string | undefined {
  const declared = target.definition?.mimeType;
  if (typeof declared !== 'string' || !Array.isArray(result.contents)) return undefined;
  const want = mediaType(declared);
  for (const [i, c] of result.contents.entries()) {
    if (!isJsonObject(c) || c.uri !== target.name || typeof c.mimeType !== 'string') continue;
    // Both types are the upstream's words; the listing already showed the declared one to clients. Bounded.
    if (mediaType(c.mimeType) !== want)
      return `contents/${i}/mimeType: ${c.mimeType.slice(0, 64)} where the listing declares ${declared.slice(0, 64)}`;
  }
  return undefined;
}

function mediaType(value: string): string {
  return value.split(';', 1)[0]!.trim().toLowerCase();
}

const modes = new WeakMap<PipelineDeps['config'], ReadonlyMap<string, OutputValidationMode>>();

/** The upstream's `outputValidation` (a map built once per config object). */
function outputMode(deps: PipelineDeps, upstream: string): OutputValidationMode {
  let byName = modes.get(deps.config);
  if (byName === undefined) {
    byName = new Map(deps.config.upstreams.map((u) => [u.name, u.outputValidation]));
    modes.set(deps.config, byName);
  }
  return byName.get(upstream) ?? 'warn';
}
