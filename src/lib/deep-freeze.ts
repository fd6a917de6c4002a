/**
 * Freezes plain objects and arrays reachable from `value`, in place, and returns it (docs/style.md habit 5:
 * validate at construction, then freeze). Instances of classes — Sets, Maps, compiled validators, secret values
 * that freeze themselves — keep their identity and are not descended into. No cycles expected (parsed JSON,
 * normalised configuration and policy).
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (
    !Array.isArray(value) &&
    Object.getPrototypeOf(value) !== Object.prototype &&
    Object.getPrototypeOf(value) !== null
  )
    return value;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
  return value;
}
