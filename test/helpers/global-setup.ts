/** Runs once before all test files. Builds nothing: tests run TypeScript through vitest and tsx. */
export default function setup(): void {
  process.env.GATEHOUSE_TEST = '1';
}
