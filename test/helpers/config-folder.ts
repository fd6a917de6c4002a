/**
 * For loader tests: a fresh temp folder per test, a config text written there and loaded as the gateway would
 * (`loadConfig` of a file), and the problems of a text the loader must refuse.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { ConfigError, loadConfig, type ConfigProblem, type GatehouseConfig } from '../../src/config/index.js';

export interface ConfigFolder {
  /** The current test's folder. */
  dir(): string;
  load(text: string, env?: NodeJS.ProcessEnv): GatehouseConfig;
  /** The problems of a refused text; throws if the text loads. */
  problems(text: string, env?: NodeJS.ProcessEnv): readonly ConfigProblem[];
}

/** Call at the top of a test file (registers `beforeEach`/`afterEach`). */
export function useConfigFolder(prefix: string): ConfigFolder {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `gatehouse-${prefix}-`));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const load = (text: string, env: NodeJS.ProcessEnv = {}): GatehouseConfig => {
    const file = path.join(dir, 'gatehouse.yaml');
    fs.writeFileSync(file, text);
    return loadConfig(file, { env });
  };
  return {
    dir: () => dir,
    load,
    problems(text, env = {}) {
      try {
        load(text, env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems;
      }
      throw new Error('expected the config to be refused');
    },
  };
}
