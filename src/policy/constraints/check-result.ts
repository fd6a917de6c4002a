/**
 * What one constraint check answers (docs/style.md habit 4: pure validators returning a Result). The reason is a
 * snake_case literal for the audit record; it never reaches the client, which sees only "Invalid params".
 */
export type CheckResult<R extends string = string> = { readonly ok: true } | { readonly ok: false; readonly reason: R };

export const PASS: CheckResult<never> = Object.freeze({ ok: true });

export function fail<R extends string>(reason: R): { readonly ok: false; readonly reason: R } {
  return { ok: false, reason };
}
