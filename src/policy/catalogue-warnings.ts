/**
 * Warnings for `gatehouse tools list`: what the policy names that the running upstreams do not offer. They are
 * not errors (an upstream may be down, or a rule may be written ahead of a tool), so the command still exits 0.
 *
 * - a tool pattern (`match.tools`) of a rule that matches no exposed tool (taking the rule's `match.upstreams`
 *   into account): usually a typo or a tool that was renamed, and the rule silently does nothing;
 * - a constraint whose `field` is not a property of the inputSchema of the tools the rule matches: a
 *   required constraint must name a property of every matched tool (otherwise each call of that tool is refused
 *   with `…:missing`), an `optional` one a property of at least one (it is normal for an optional constraint
 *   to apply to only some of the tools a rule lists). A tool whose schema does not list properties at that
 *   level is not judged.
 */
import type { CompiledPolicy, CompiledRule } from './model.js';

/** A tool as exposed, with the upstream's input schema. */
export interface ExposedTool {
  readonly exposed: string;
  readonly upstream: string;
  readonly inputSchema?: unknown;
}

export interface WarningOptions {
  /** Upstreams that are not ready: a pattern that names one (`name<separator>…`) is not warned about. */
  readonly unavailable?: readonly string[];
  /** The catalogue separator. Default `__`. */
  readonly separator?: string;
}

export function policyCatalogueWarnings(
  policy: CompiledPolicy,
  tools: readonly ExposedTool[],
  opts: WarningOptions = {},
): string[] {
  const out: string[] = [];
  const separator = opts.separator ?? '__';
  const unavailable = opts.unavailable ?? [];
  const namesDown = (source: string): boolean => unavailable.some((u) => source.startsWith(`${u}${separator}`));
  for (const rule of policy.rules) {
    const globs = rule.match.tools;
    const inUpstream = (t: ExposedTool): boolean =>
      rule.match.upstreams === undefined || rule.match.upstreams.has(t.upstream);
    const upstreamsDown =
      rule.match.upstreams !== undefined && [...rule.match.upstreams].every((u) => unavailable.includes(u));
    for (const g of globs ?? []) {
      if (upstreamsDown || namesDown(g.source)) continue;
      if (!tools.some((t) => inUpstream(t) && g.matches(t.exposed)))
        out.push(`${where(rule)}: tool pattern "${g.source}" matches no exposed tool`);
    }
    // Tools the rule applies to: by pattern, or (a rule naming only upstreams) every tool of those upstreams.
    const onlyUpstreams =
      globs === undefined &&
      rule.match.resources === undefined &&
      rule.match.prompts === undefined &&
      rule.match.requests === undefined;
    const matched =
      globs !== undefined
        ? tools.filter((t) => inUpstream(t) && globs.some((g) => g.matches(t.exposed)))
        : onlyUpstreams
          ? tools.filter(inUpstream)
          : [];
    if (matched.length === 0) continue;
    for (const check of rule.argumentChecks) {
      const field = check.field;
      if (field === undefined) continue;
      const judged = matched
        .map((t) => ({ t, has: hasProperty(t.inputSchema, field.segments) }))
        .filter((j) => j.has !== undefined);
      const lacking = judged.filter((j) => j.has === false).map((j) => j.t.exposed);
      if (lacking.length === 0) continue;
      if (field.optional && lacking.length < judged.length) continue;
      const whose =
        lacking.length === 1
          ? `of the inputSchema of ${lacking[0]}`
          : `of the inputSchema of any of ${lacking.join(', ')}`;
      out.push(`${where(rule)}: constraint field "${field.text}" is not a property ${whose}`);
    }
  }
  return out;
}

function where(rule: CompiledRule): string {
  const file = rule.file.split(/[\\/]/).pop() ?? rule.file;
  return `rule ${rule.id} (${file}${rule.line !== undefined ? `:${rule.line}` : ''})`;
}

/** True / false when the schema says whether the property path exists; undefined when it does not say. */
function hasProperty(schema: unknown, segments: readonly string[]): boolean | undefined {
  let node = schema;
  for (const seg of segments) {
    if (typeof node !== 'object' || node === null) return undefined;
    const obj = node as Record<string, unknown>;
    if (obj.type === 'array' || Array.isArray(obj.items) || (typeof obj.items === 'object' && obj.items !== null)) {
      if (!/^\d+$/.test(seg)) return undefined;
      node = obj.items;
      continue;
    }
    const props = obj.properties;
    if (typeof props !== 'object' || props === null) return undefined;
    if (!Object.hasOwn(props, seg)) return false;
    node = (props as Record<string, unknown>)[seg];
  }
  return true;
}
