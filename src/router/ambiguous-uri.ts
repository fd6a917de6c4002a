/**
 * Whether a resource URI holds something its server may read differently from the text the gateway matched
 * (threat model #10, #8): a `.` or `..` path segment (RFC 3986 §5.2.4 removes dot segments, so
 * `file:///srv/docs/../x` names `file:///x` while a policy glob `file:///srv/docs/**` matched its text), a
 * backslash (a separator to Windows, and to WHATWG in special schemes), a percent-encoded `.`, `/`, `\` or `%`
 * (`%2e%2e`, `%2f`, double encoding), or a control character. Nothing is decoded or normalised: such a URI is
 * refused, not repaired, so the URI decided on is the URI forwarded.
 */
const AMBIGUOUS = /(?:^|[/\\])\.\.?(?=[/\\?#]|$)|\\|%(?:2e|2f|5c|25)|[\u0000-\u001f\u007f]/i;

export function isAmbiguousUri(uri: string): boolean {
  return AMBIGUOUS.test(uri);
}
