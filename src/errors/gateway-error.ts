import { ErrorCodes, type ErrorCode } from './codes.js';

/**
 * The one runtime error type of the request path (docs/architecture.md §5).
 *
 * `publicMessage` is all the client ever sees; `detail` (and `cause`) feed logs and audit records.
 * Construct with a code from the table; the public message defaults to the table's fixed text and may
 * only be specialised with strings the gateway itself owns (e.g. the exposed tool name).
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly publicMessage: string;
  readonly detail: string | undefined;
  /** Extra JSON-RPC `data` the wire may carry (never upstream text). */
  readonly data: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    opts: { detail?: string; publicMessage?: string; data?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(opts.detail ?? ErrorCodes[code].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.publicMessage = opts.publicMessage ?? ErrorCodes[code].message;
    this.detail = opts.detail;
    this.data = opts.data;
  }

  get httpStatus(): number {
    return ErrorCodes[this.code].http;
  }

  get rpcCode(): number {
    return ErrorCodes[this.code].rpc;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** Anything thrown below the front door becomes a GatewayError; unknown throwables become GW_INTERNAL. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new GatewayError('GW_INTERNAL', { detail, cause: err });
}

/** The JSON-RPC error object for the wire: fixed public text, optional gateway-owned data. */
export function toRpcError(err: GatewayError): { code: number; message: string; data?: Record<string, unknown> } {
  return err.data === undefined
    ? { code: err.rpcCode, message: err.publicMessage }
    : { code: err.rpcCode, message: err.publicMessage, data: err.data };
}
