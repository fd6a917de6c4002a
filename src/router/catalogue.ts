import type { CatalogueConfig } from '../config/types.js';
import { ConfigError } from '../errors/config-error.js';
import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';
import { isAmbiguousUri } from './ambiguous-uri.js';
import { headerAnnotationProblem } from './header-annotations.js';
import { exposedName, TOOL_NAME_RE, type NamingOptions } from './naming.js';
import type { OutputCheck, OutputValidators } from './output-schemas.js';
import { templateMatcher } from './uri-template.js';

/** What one upstream offers, as listed (names as the upstream knows them). */
export interface UpstreamListing {
  upstream: string;
  tools: JsonObject[];
  resources: JsonObject[];
  resourceTemplates: JsonObject[];
  prompts: JsonObject[];
}

/** A tool or prompt under its exposed name. */
export interface NamedEntry {
  exposed: string;
  upstream: string;
  original: string;
  /** As the client sees it: the upstream's definition with only the name replaced. */
  definition: JsonObject;
}

export interface ToolEntry extends NamedEntry {
  /** The compiled `outputSchema`, when the tool declares one (output-schemas.ts; checked by mcp/steps/output.ts). */
  output?: OutputCheck;
}
export type PromptEntry = NamedEntry;

export interface TemplateEntry {
  upstream: string;
  definition: JsonObject;
  matcher: RegExp;
}

export interface CatalogueIssue {
  /** `invalid-output-schema`: the tool stays listed; its results fail output validation (per its upstream's mode). */
  kind: 'collision' | 'ambiguous-resource' | 'hidden-task-tool' | 'invalid-item' | 'invalid-output-schema';
  message: string;
}

/**
 * The merged, namespaced view of every upstream (docs/architecture.md §1 ⑤). Immutable: a refresh builds a new one,
 * so a request that started against one catalogue finishes against it.
 */
export class Catalogue {
  readonly tools: ReadonlyMap<string, ToolEntry>;
  readonly prompts: ReadonlyMap<string, PromptEntry>;
  /** Exact resource URI → owning upstream. URIs listed by two upstreams are in neither (ambiguous). */
  readonly resources: ReadonlyMap<string, { upstream: string; definition: JsonObject }>;
  readonly templates: readonly TemplateEntry[];
  readonly issues: readonly CatalogueIssue[];
  readonly revision: number;

  private constructor(parts: {
    tools: Map<string, ToolEntry>;
    prompts: Map<string, PromptEntry>;
    resources: Map<string, { upstream: string; definition: JsonObject }>;
    templates: TemplateEntry[];
    issues: CatalogueIssue[];
    revision: number;
  }) {
    this.tools = parts.tools;
    this.prompts = parts.prompts;
    this.resources = parts.resources;
    this.templates = Object.freeze(parts.templates);
    this.issues = Object.freeze(parts.issues);
    this.revision = parts.revision;
  }

  private toolTargetsValue: readonly { kind: 'tool'; name: string; upstream: string }[] | undefined;

  /** Every tool as a policy target, in `tools` order: one array per catalogue (policy/visibility.ts plans by it). */
  get toolTargets(): readonly { kind: 'tool'; name: string; upstream: string }[] {
    this.toolTargetsValue ??= Object.freeze(
      [...this.tools.values()].map((t) => ({ kind: 'tool' as const, name: t.exposed, upstream: t.upstream })),
    );
    return this.toolTargetsValue;
  }

  static empty(): Catalogue {
    return new Catalogue({
      tools: new Map(),
      prompts: new Map(),
      resources: new Map(),
      templates: [],
      issues: [],
      revision: 0,
    });
  }

  /**
   * Merge listings in config order. Two items that would get one exposed name are a collision: reported
   * (and, at start-up, fatal via `assertNoCollisions`); never merged (threat model #15).
   */
  static build(
    listings: readonly UpstreamListing[],
    config: CatalogueConfig,
    upstreamCount: number,
    revision: number,
    outputs?: OutputValidators,
  ): Catalogue {
    const naming: NamingOptions = {
      separator: config.separator,
      maxNameLength: config.maxNameLength,
      prefixed: !(config.unprefixedSingleUpstream && upstreamCount === 1),
    };
    const issues: CatalogueIssue[] = [];
    const tools = new Map<string, ToolEntry>();
    const prompts = new Map<string, PromptEntry>();
    const resourceOwners = new Map<string, { upstream: string; definition: JsonObject }[]>();
    const templates: TemplateEntry[] = [];
    const place = (
      into: Map<string, NamedEntry>,
      kind: 'tool' | 'prompt',
      upstream: string,
      original: string,
      item: JsonObject,
    ): string | undefined => {
      const exposed = exposedName(upstream, original, naming);
      const prior = into.get(exposed);
      if (prior) {
        issues.push({
          kind: 'collision',
          message: `${kind} name "${exposed}" is exposed by upstream "${prior.upstream}" (${kind} "${prior.original}") and upstream "${upstream}" (${kind} "${original}")`,
        });
        return undefined;
      }
      into.set(exposed, { exposed, upstream, original, definition: { ...item, name: exposed } });
      return exposed;
    };

    for (const listing of listings) {
      for (const tool of listing.tools) {
        const original = tool.name;
        if (typeof original !== 'string' || original === '' || !isJsonObject(tool.inputSchema)) {
          issues.push({
            kind: 'invalid-item',
            message: `upstream "${listing.upstream}" listed a tool without a name or an object inputSchema; hidden`,
          });
          continue;
        }
        const annotations = headerAnnotationProblem(tool.inputSchema);
        if (annotations !== undefined) {
          issues.push({
            kind: 'invalid-item',
            message: `tool "${original}" of upstream "${listing.upstream}" has an invalid x-mcp-header (${annotations}); hidden`,
          });
          continue;
        }
        // Tasks are not relayed yet (spec checklist §8): a tool that requires them could not be called.
        if (isJsonObject(tool.execution) && tool.execution.taskSupport === 'required') {
          issues.push({
            kind: 'hidden-task-tool',
            message: `tool "${original}" of upstream "${listing.upstream}" requires tasks; hidden`,
          });
          continue;
        }
        const exposed = place(tools, 'tool', listing.upstream, original, tool);
        if (exposed !== undefined && outputs !== undefined && tool.outputSchema !== undefined) {
          const output = outputs.check(tool.outputSchema);
          tools.get(exposed)!.output = output;
          if (!output.ok)
            issues.push({
              kind: 'invalid-output-schema',
              message: `tool "${original}" of upstream "${listing.upstream}": ${output.problem}; its results count as invalid`,
            });
        }
      }
      for (const prompt of listing.prompts) {
        const original = prompt.name;
        if (typeof original !== 'string' || original === '') {
          issues.push({
            kind: 'invalid-item',
            message: `upstream "${listing.upstream}" listed a prompt without a name; hidden`,
          });
          continue;
        }
        place(prompts, 'prompt', listing.upstream, original, prompt);
      }
      for (const resource of listing.resources) {
        if (typeof resource.uri !== 'string') continue;
        const owners = resourceOwners.get(resource.uri) ?? [];
        owners.push({ upstream: listing.upstream, definition: resource });
        resourceOwners.set(resource.uri, owners);
      }
      for (const template of listing.resourceTemplates) {
        const matcher = typeof template.uriTemplate === 'string' ? templateMatcher(template.uriTemplate) : undefined;
        if (!matcher) {
          issues.push({
            kind: 'invalid-item',
            message: `upstream "${listing.upstream}" listed an unusable resource template; hidden`,
          });
          continue;
        }
        templates.push({ upstream: listing.upstream, definition: template, matcher });
      }
    }

    const resources = new Map<string, { upstream: string; definition: JsonObject }>();
    for (const [uri, owners] of resourceOwners) {
      const distinct = new Set(owners.map((o) => o.upstream));
      if (distinct.size > 1) {
        issues.push({
          kind: 'ambiguous-resource',
          message: `resource "${uri}" is listed by upstreams ${[...distinct].map((u) => `"${u}"`).join(' and ')}; routed to neither`,
        });
        continue;
      }
      resources.set(uri, owners[0]!);
    }
    return new Catalogue({ tools, prompts, resources, templates, issues, revision });
  }

  /** Start-up rule: a collision names both sources and stops the gateway (the config must resolve it). */
  assertNoCollisions(configFile: string): void {
    const collisions = this.issues.filter((i) => i.kind === 'collision');
    if (collisions.length > 0)
      throw new ConfigError(collisions.map((c) => ({ file: configFile, path: '/upstreams', message: c.message })));
  }

  /**
   * The upstream that serves `uri`: an exact listed URI first, then the one template that matches. A URI only a
   * template matches must not be one the upstream could resolve elsewhere (`{+path}` = `../../etc/passwd`): the
   * policy's URI globs decide on its text, and that text is forwarded as it is.
   */
  resolveResource(uri: string): string | undefined {
    const exact = this.resources.get(uri);
    if (exact) return exact.upstream;
    if (isAmbiguousUri(uri)) return undefined;
    let owner: string | undefined;
    for (const t of this.templates) {
      if (!t.matcher.test(uri)) continue;
      if (owner !== undefined && owner !== t.upstream) return undefined; // two owners: ambiguous, refuse
      owner = t.upstream;
    }
    return owner;
  }

  static isValidToolName(name: string): boolean {
    return TOOL_NAME_RE.test(name);
  }
}
