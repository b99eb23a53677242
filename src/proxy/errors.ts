/** How long the gateway waits for an upstream connection (TCP and TLS handshake) before it gives up with a 504. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** The upstream could not be reached or broke before answering: the client gets 502 (or 504 on a timeout). */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly status: number;
  constructor(
    message: string,
    readonly code: string | undefined,
    status = 502,
  ) {
    super(message);
    this.status = status;
  }

  static from(err: unknown): UpstreamError {
    if (err instanceof UpstreamError) return err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'UND_ERR_CONNECT_TIMEOUT') {
      return new UpstreamError(`the upstream did not complete a connection within ${CONNECT_TIMEOUT_MS / 1000} s (stopped or overloaded?)`, e.code, 504);
    }
    return new UpstreamError(`upstream unreachable: ${e.code ?? e.message}`, e.code);
  }
}
