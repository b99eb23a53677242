import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { realDelay, type Delay } from './delay.js';

/** What is in flight, so shutdown can wait for requests and then close upgraded sessions. */
export class ConnectionTracker {
  private requests = 0;
  private readonly upgraded = new Set<Duplex>();
  private readonly sockets = new Set<Duplex>();
  private readonly watches = new Set<ServerResponse>();
  private endingWatches = false;
  /** Shutdown's waits: each resolved at the first 'close' after which its condition holds. */
  private waiters: Array<{ readonly holds: () => boolean; readonly resolve: () => void }> = [];

  constructor(private readonly delay: Delay = realDelay) {}

  trackRequest(_req: IncomingMessage, res: ServerResponse): void {
    this.requests += 1;
    res.once('close', () => {
      this.requests -= 1;
      this.settle();
    });
  }

  /**
   * A watch in flight. Shutdown ends watches at once rather than after the grace period: a watch never finishes by
   * itself, and its client (an informer, `kubectl get -w`) watches again, on another replica. One opened while
   * shutting down is ended as it starts.
   */
  trackWatch(res: ServerResponse): void {
    if (this.endingWatches) {
      res.destroy();
      return;
    }
    this.watches.add(res);
    res.once('close', () => this.watches.delete(res));
  }

  /** Ends every watch (as the grace period's end would, only sooner) and each one that starts from now on. */
  endWatches(): void {
    this.endingWatches = true;
    for (const res of this.watches) res.destroy();
  }

  trackUpgrade(socket: Duplex): void {
    this.upgraded.add(socket);
    socket.once('close', () => {
      this.upgraded.delete(socket);
      this.settle();
    });
  }

  /**
   * Every accepted TCP connection, TLS handshakes included. The http server's closeAllConnections does not see a
   * TLS connection whose client closed its side before sending a request (seen: it stays half-open and keeps
   * server.close() waiting), so shutdown ends whatever is left.
   */
  trackSocket(socket: Duplex): void {
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.settle();
    });
  }

  /** Accepted connections open now, TLS handshakes included. */
  get openConnections(): number {
    return this.sockets.size;
  }

  closeAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  get inFlight(): { requests: number; upgraded: number } {
    return { requests: this.requests, upgraded: this.upgraded.size };
  }

  /** Resolves when no ordinary request is in flight, or after `ms`. */
  drain(ms: number): Promise<void> {
    return this.until(() => this.requests === 0, ms);
  }

  /**
   * Resolves once every request, upgraded session and connection has emitted 'close', or after `ms`. These
   * listeners were added before the routes' own, so by the time the promise's continuation runs, each exchange has
   * written its audit record: shutdown flushes the audit trail after this, and the process exits after that.
   */
  allClosed(ms: number): Promise<void> {
    return this.until(() => this.requests === 0 && this.upgraded.size === 0 && this.sockets.size === 0, ms);
  }

  closeUpgraded(): void {
    for (const socket of this.upgraded) socket.destroy();
  }

  private until(holds: () => boolean, ms: number): Promise<void> {
    if (holds()) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = this.delay(ms, resolve);
      this.waiters.push({
        holds,
        resolve: () => {
          cancel();
          resolve();
        },
      });
    });
  }

  private settle(): void {
    const waiting = [];
    for (const w of this.waiters) {
      if (w.holds()) w.resolve();
      else waiting.push(w);
    }
    this.waiters = waiting;
  }
}
