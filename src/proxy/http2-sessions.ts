import http2 from 'node:http2';
import type { SecureContext } from 'node:tls';

/** Streams per connection until the upstream's SETTINGS say how many it takes (Go's server allows 250). */
const ASSUMED_MAX_STREAMS = 100;
/** A connection without streams for this long is closed. */
const IDLE_CLOSE_MS = 60_000;

interface Entry {
  readonly session: http2.ClientHttp2Session;
  streams: number;
  idleTimer: NodeJS.Timeout | undefined;
}

export interface Http2SessionsOptions {
  readonly secureContext: SecureContext;
  readonly servername?: string | undefined;
  readonly rejectUnauthorized: boolean;
}

/**
 * HTTP/2 connections to one TLS upstream, shared by many long-lived requests: a watch costs a stream on a shared
 * connection instead of a TLS connection of its own (OpenSSL's buffers alone are about 34 KB a connection;
 * docs/performance.md). A connection takes streams up to what its SETTINGS allow; then the next one is opened.
 * Flow control is per stream: Node replenishes the connection window as data arrives and a stream's window only
 * as it is read, so a paused (slow) client holds back its own stream and never the others on the connection.
 */
export class Http2Sessions {
  private readonly entries = new Set<Entry>();
  private closed = false;
  /** Set once an upstream answered the TLS handshake without choosing h2: from then on, nothing goes this way. */
  private refused = false;

  constructor(
    private readonly origin: string,
    private readonly options: Http2SessionsOptions,
  ) {}

  /** Whether long-lived requests should take this way (the upstream has not refused HTTP/2). */
  get usable(): boolean {
    return !this.closed && !this.refused;
  }

  /**
   * Opens a stream with `headers` (pseudo-headers included) on a connection with room, or on a new one; `endStream`
   * false when a body follows (written to the stream).
   */
  request(headers: http2.OutgoingHttpHeaders, endStream = true): http2.ClientHttp2Stream {
    const entry = this.withRoom() ?? this.connect();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = entry.session.request(headers, { endStream });
    } catch (err) {
      // Refused before any stream existed (Node takes some headers only once): nothing is counted, and a connection
      // opened for it, or left without streams, still closes when idle (review 2026-12-07: each refusal kept a count).
      if (entry.streams === 0) this.idleSoon(entry);
      throw err;
    }
    entry.streams += 1;
    if (entry.idleTimer !== undefined) {
      clearTimeout(entry.idleTimer);
      entry.idleTimer = undefined;
    }
    stream.once('close', () => {
      entry.streams -= 1;
      if (entry.streams === 0) this.idleSoon(entry);
    });
    return stream;
  }

  private idleSoon(entry: Entry): void {
    if (entry.idleTimer !== undefined || !this.entries.has(entry)) return;
    entry.idleTimer = setTimeout(() => this.drop(entry, true), IDLE_CLOSE_MS);
    entry.idleTimer.unref();
  }

  /** Open connections and the streams on them (for tests and metrics). */
  get connections(): ReadonlyArray<{ streams: number }> {
    return [...this.entries].map((e) => ({ streams: e.streams }));
  }

  close(): void {
    this.closed = true;
    for (const entry of this.entries) this.drop(entry, false);
  }

  private withRoom(): Entry | undefined {
    for (const entry of this.entries) {
      const { session } = entry;
      if (session.closed || session.destroyed) continue;
      const max = Math.min(session.remoteSettings?.maxConcurrentStreams ?? ASSUMED_MAX_STREAMS, 1000);
      if (entry.streams < max) return entry;
    }
    return undefined;
  }

  private connect(): Entry {
    const session = http2.connect(this.origin, {
      secureContext: this.options.secureContext,
      rejectUnauthorized: this.options.rejectUnauthorized,
      ...(this.options.servername !== undefined ? { servername: this.options.servername } : {}),
    });
    const entry: Entry = { session, streams: 0, idleTimer: undefined };
    this.entries.add(entry);
    session.once('connect', () => {
      const alpn = session.alpnProtocol;
      if (alpn !== undefined && alpn !== 'h2') this.refused = true;
    });
    // The streams see the failure themselves; the session only has to leave the pool.
    session.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') this.refused = true;
      this.drop(entry, false);
    });
    session.once('goaway', () => this.entries.delete(entry));
    session.once('close', () => this.drop(entry, false));
    return entry;
  }

  private drop(entry: Entry, gracefully: boolean): void {
    if (entry.idleTimer !== undefined) clearTimeout(entry.idleTimer);
    this.entries.delete(entry);
    if (gracefully) entry.session.close();
    else if (!entry.session.destroyed) entry.session.destroy();
  }
}
