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
    return new UpstreamError(`upstream unreachable: ${e.code ?? e.message}`, e.code);
  }
}
