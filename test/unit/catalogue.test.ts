import { describe, expect, it } from 'vitest';
import type { CatalogueConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors/config-error.js';
import type { JsonObject } from '../../src/lib/json-rpc.js';
import { Catalogue, type UpstreamListing } from '../../src/router/catalogue.js';
import { exposedName } from '../../src/router/naming.js';
import { templateMatcher } from '../../src/router/uri-template.js';

const config: CatalogueConfig = { separator: '__', maxNameLength: 64, unprefixedSingleUpstream: false };

function tool(name: string, extra: JsonObject = {}): JsonObject {
  return { name, description: `the ${name} tool`, inputSchema: { type: 'object' }, ...extra };
}

function listing(upstream: string, parts: Partial<Omit<UpstreamListing, 'upstream'>> = {}): UpstreamListing {
  return { upstream, tools: [], resources: [], resourceTemplates: [], prompts: [], ...parts };
}

describe('Catalogue.build', () => {
  it('namespaces every tool and prompt and keeps the mapping back to the original', () => {
    const c = Catalogue.build(
      [
        listing('orders', { tools: [tool('get_order')], prompts: [{ name: 'summary' }] }),
        listing('fx', { tools: [tool('get_order')] }),
      ],
      config,
      2,
      7,
    );
    expect([...c.tools.keys()]).toEqual(['orders__get_order', 'fx__get_order']);
    const entry = c.tools.get('orders__get_order')!;
    expect(entry).toMatchObject({ upstream: 'orders', original: 'get_order' });
    // Only the name changes in the definition clients see.
    expect(entry.definition).toEqual({ ...tool('get_order'), name: 'orders__get_order' });
    expect(c.prompts.get('orders__summary')).toMatchObject({ upstream: 'orders', original: 'summary' });
    expect(c.revision).toBe(7);
    expect(c.issues).toEqual([]);
  });

  it('exposes names unprefixed only when asked and only with a single upstream', () => {
    const unprefixed = { ...config, unprefixedSingleUpstream: true };
    expect([
      ...Catalogue.build([listing('orders', { tools: [tool('get_order')] })], unprefixed, 1, 1).tools.keys(),
    ]).toEqual(['get_order']);
    const two = Catalogue.build([listing('orders', { tools: [tool('get_order')] }), listing('fx')], unprefixed, 2, 1);
    expect([...two.tools.keys()]).toEqual(['orders__get_order']);
  });

  it('reports a collision naming both sources, keeps the first and never merges', () => {
    // A hashed (cleaned) name and a literal tool name that happens to equal it: the only way two tools can
    // meet under one exposed name, since upstream names cannot contain the separator.
    const cleaned = exposedName('fx', 'a b', { separator: '__', maxNameLength: 64, prefixed: true });
    const literal = cleaned.slice('fx__'.length);
    const c = Catalogue.build([listing('fx', { tools: [tool('a b'), tool(literal)] })], config, 1, 1);
    expect(c.tools.size).toBe(1);
    expect(c.tools.get(cleaned)?.original).toBe('a b');
    const collisions = c.issues.filter((i) => i.kind === 'collision');
    expect(collisions).toHaveLength(1);
    expect(collisions[0]!.message).toContain(`"${cleaned}"`);
    expect(collisions[0]!.message).toContain('(tool "a b")');
    expect(collisions[0]!.message).toContain(`(tool "${literal}")`);
  });

  it('does not collide equal tool names of two upstreams: with two, prefixes always apply', () => {
    const c = Catalogue.build(
      [listing('a', { tools: [tool('echo')] }), listing('b', { tools: [tool('echo')] })],
      { ...config, unprefixedSingleUpstream: true },
      2,
      1,
    );
    expect([...c.tools.keys()]).toEqual(['a__echo', 'b__echo']);
    expect(c.issues).toEqual([]);
  });

  it('reports a duplicate tool of one upstream as a collision that names both sources', () => {
    const c = Catalogue.build(
      [
        listing('dup', {
          tools: [tool('echo'), tool('echo', { description: 'other' })],
          prompts: [{ name: 'p' }, { name: 'p' }],
        }),
      ],
      config,
      1,
      1,
    );
    expect(c.tools.get('dup__echo')?.definition.description).toBe('the echo tool');
    const messages = c.issues.map((i) => i.message);
    expect(messages).toContain(
      'tool name "dup__echo" is exposed by upstream "dup" (tool "echo") and upstream "dup" (tool "echo")',
    );
    expect(messages).toContain(
      'prompt name "dup__p" is exposed by upstream "dup" (prompt "p") and upstream "dup" (prompt "p")',
    );
  });

  it('assertNoCollisions throws a ConfigError naming the file and both sources', () => {
    const c = Catalogue.build([listing('dup', { tools: [tool('echo'), tool('echo')] })], config, 1, 1);
    let thrown: unknown;
    try {
      c.assertNoCollisions('/etc/gatehouse.yaml');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const e = thrown as ConfigError;
    expect(e.problems).toEqual([
      {
        file: '/etc/gatehouse.yaml',
        path: '/upstreams',
        message: expect.stringContaining('upstream "dup" (tool "echo")'),
      },
    ]);
    expect(e.message).toContain('/etc/gatehouse.yaml: /upstreams: tool name "dup__echo"');
  });

  it('assertNoCollisions is quiet when only non-fatal issues exist', () => {
    const c = Catalogue.build(
      [
        listing('a', {
          tools: [tool('t', { execution: { taskSupport: 'required' } }), { name: 'no-schema' }],
          resources: [{ uri: 'x://1' }],
        }),
        listing('b', { resources: [{ uri: 'x://1' }] }),
      ],
      config,
      2,
      1,
    );
    expect(c.issues.map((i) => i.kind).sort()).toEqual(['ambiguous-resource', 'hidden-task-tool', 'invalid-item']);
    expect(() => c.assertNoCollisions('f.yaml')).not.toThrow();
  });

  it('hides a tool that requires tasks but keeps one where tasks are optional', () => {
    const c = Catalogue.build(
      [
        listing('fx', {
          tools: [
            tool('needs_tasks', { execution: { taskSupport: 'required' } }),
            tool('maybe_tasks', { execution: { taskSupport: 'optional' } }),
          ],
        }),
      ],
      config,
      1,
      1,
    );
    expect([...c.tools.keys()]).toEqual(['fx__maybe_tasks']);
    expect(c.issues).toEqual([
      { kind: 'hidden-task-tool', message: 'tool "needs_tasks" of upstream "fx" requires tasks; hidden' },
    ]);
  });

  it('hides tools without a name or an object inputSchema', () => {
    const c = Catalogue.build(
      [
        listing('fx', {
          tools: [
            { name: '', inputSchema: {} },
            { name: 'x' },
            { name: 'y', inputSchema: 'no' },
            { inputSchema: {} },
            tool('ok'),
          ],
        }),
      ],
      config,
      1,
      1,
    );
    expect([...c.tools.keys()]).toEqual(['fx__ok']);
    expect(c.issues.filter((i) => i.kind === 'invalid-item')).toHaveLength(4);
  });

  it('routes a URI listed by two upstreams to neither', () => {
    const c = Catalogue.build(
      [
        listing('a', { resources: [{ uri: 'file:///shared' }, { uri: 'file:///a-only' }] }),
        listing('b', { resources: [{ uri: 'file:///shared' }] }),
      ],
      config,
      2,
      1,
    );
    expect(c.resolveResource('file:///shared')).toBeUndefined();
    expect(c.resources.has('file:///shared')).toBe(false);
    expect(c.resolveResource('file:///a-only')).toBe('a');
    expect(c.issues).toEqual([
      {
        kind: 'ambiguous-resource',
        message: 'resource "file:///shared" is listed by upstreams "a" and "b"; routed to neither',
      },
    ]);
  });

  it('keeps a URI one upstream lists twice', () => {
    const c = Catalogue.build(
      [
        listing('a', {
          resources: [
            { uri: 'x://1', name: 'one' },
            { uri: 'x://1', name: 'again' },
          ],
        }),
      ],
      config,
      1,
      1,
    );
    expect(c.resolveResource('x://1')).toBe('a');
    expect(c.issues).toEqual([]);
  });

  it('routes by template when no exact URI is listed, and refuses when two upstreams match', () => {
    const c = Catalogue.build(
      [
        listing('a', {
          resources: [{ uri: 'items://special' }],
          resourceTemplates: [{ uriTemplate: 'items://{id}' }, { uriTemplate: 'docs://{+path}' }],
        }),
        listing('b', {
          resourceTemplates: [{ uriTemplate: 'users://{id}/profile' }, { uriTemplate: 'docs://{+path}' }],
        }),
      ],
      config,
      2,
      1,
    );
    expect(c.resolveResource('items://42')).toBe('a');
    expect(c.resolveResource('items://special')).toBe('a');
    expect(c.resolveResource('items://42/more')).toBeUndefined();
    expect(c.resolveResource('users://7/profile')).toBe('b');
    expect(c.resolveResource('users://7/other')).toBeUndefined();
    // docs:// is claimed by both: ambiguous, refused.
    expect(c.resolveResource('docs://a/b')).toBeUndefined();
    expect(c.resolveResource('nothing://here')).toBeUndefined();
  });

  // The policy's URI globs decide on the text; a template must not route text the upstream resolves elsewhere.
  it('routes no template-matched URI with dot segments, backslashes or encoded dots and separators', () => {
    const c = Catalogue.build(
      [
        listing('a', {
          resources: [{ uri: 'file:///listed/../as-is' }],
          resourceTemplates: [{ uriTemplate: 'file:///{+path}' }, { uriTemplate: 'items://{id}' }],
        }),
      ],
      config,
      1,
      1,
    );
    for (const uri of [
      'file:///srv/docs/../../etc/passwd',
      'file:///srv/docs/..',
      'file:///srv/docs/./x',
      'file:///srv/docs/%2e%2e/secret',
      'file:///srv/docs/%2E%2e%2Fsecret',
      'file:///srv/docs/..%2fsecret',
      'file:///srv/docs/%252e%252e/secret',
      'file:///srv/docs\\..\\secret',
      'file:///srv/docs/a\nb',
      'items://..',
      'items://.',
      'items://%2e%2e',
    ]) {
      expect(c.resolveResource(uri), JSON.stringify(uri)).toBeUndefined();
    }
    const fine = ['file:///srv/docs/a.b/c..d', 'file:///srv/docs/.hidden', 'file:///srv/docs/100%20done', 'items://42'];
    for (const uri of fine) {
      expect(c.resolveResource(uri), uri).toBe('a');
    }
    // A URI the upstream listed itself is routed as listed.
    expect(c.resolveResource('file:///listed/../as-is')).toBe('a');
  });

  it('drops unusable templates with an issue', () => {
    const c = Catalogue.build(
      [listing('a', { resourceTemplates: [{ uriTemplate: 'x://{bad expr}' }, { name: 'no template' }] })],
      config,
      1,
      1,
    );
    expect(c.templates).toHaveLength(0);
    expect(c.issues.map((i) => i.kind)).toEqual(['invalid-item', 'invalid-item']);
  });

  it('is immutable', () => {
    const c = Catalogue.build([listing('a', { tools: [tool('t')] })], config, 1, 1);
    expect(Object.isFrozen(c.templates)).toBe(true);
    expect(Object.isFrozen(c.issues)).toBe(true);
  });
});

describe('templateMatcher', () => {
  const m = (template: string): RegExp => {
    const re = templateMatcher(template);
    if (!re) throw new Error(`no matcher for ${template}`);
    return re;
  };

  it('matches simple variables within one path segment', () => {
    expect(m('fixture://items/{id}').test('fixture://items/42')).toBe(true);
    expect(m('fixture://items/{id}').test('fixture://items/')).toBe(false);
    expect(m('fixture://items/{id}').test('fixture://items/4/2')).toBe(false);
    expect(m('fixture://items/{id}').test('fixture://items/42?x=1')).toBe(false);
    expect(m('a://{x}/{y}').test('a://1/2')).toBe(true);
  });

  it('matches reserved and fragment expansion across slashes', () => {
    expect(m('file:///{+path}').test('file:///a/b/c.txt')).toBe(true);
    expect(m('x://doc{#frag}').test('x://doc#sec/1')).toBe(true);
  });

  it('accepts an optional query for {?a,b} and {&c}', () => {
    const re = m('search://q{?term,limit}');
    expect(re.test('search://q')).toBe(true);
    expect(re.test('search://q?term=x&limit=2')).toBe(true);
    expect(m('s://q?fixed=1{&more}').test('s://q?fixed=1&more=2')).toBe(true);
  });

  it('escapes literal regex characters', () => {
    const re = m('a+b://x.y/{id}');
    expect(re.test('a+b://x.y/1')).toBe(true);
    expect(re.test('aab://xzy/1')).toBe(false);
  });

  it('refuses expressions it does not understand', () => {
    expect(templateMatcher('x://{a b}')).toBeUndefined();
    expect(templateMatcher('x://{=a}')).toBeUndefined();
  });

  it('matches a template without variables exactly', () => {
    expect(m('static://one').test('static://one')).toBe(true);
    expect(m('static://one').test('static://one/two')).toBe(false);
  });
});
