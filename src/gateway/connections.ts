import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** What is in flight, so shutdown can wait for requests and then close upgraded sessions. */
export class ConnectionTracker {
  private requests = 0;
  private readonly upgraded = new Set<Duplex>();
  private readonly sockets = new Set<Duplex>();
  private drainedWaiters: Array<() => void> = [];
  private closedWaiters: Array<() => void> = [];

  trackRequest(_req: IncomingMessage, res: ServerResponse): void {
    this.requests += 1;
    res.once('close', () => {
      this.requests -= 1;
      if (this.requests === 0) this.notifyDrained();
      this.notifyIfAllClosed();
    });
  }

  trackUpgrade(socket: Duplex): void {
    this.upgraded.add(socket);
    socket.once('close', () => {
      this.upgraded.delete(socket);
      this.notifyIfAllClosed();
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
      this.notifyIfAllClosed();
    });
  }

  closeAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  get inFlight(): { requests: number; upgraded: number } {
    return { requests: this.requests, upgraded: this.upgraded.size };
  }

  /** Resolves when no ordinary request is in flight, or after `ms`. */
  drain(ms: number): Promise<void> {
    if (this.requests === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.drainedWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Resolves once every request, upgraded session and connection has emitted 'close', or after `ms`. These
   * listeners were added before the routes' own, so by the time the promise's continuation runs, each exchange has
   * written its audit record: shutdown flushes the audit trail after this, and the process exits after that.
   */
  allClosed(ms: number): Promise<void> {
    if (this.isAllClosed()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.closedWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  closeUpgraded(): void {
    for (const socket of this.upgraded) socket.destroy();
  }

  private isAllClosed(): boolean {
    return this.requests === 0 && this.upgraded.size === 0 && this.sockets.size === 0;
  }

  private notifyIfAllClosed(): void {
    if (!this.isAllClosed()) return;
    const waiters = this.closedWaiters;
    this.closedWaiters = [];
    for (const w of waiters) w();
  }

  private notifyDrained(): void {
    const waiters = this.drainedWaiters;
    this.drainedWaiters = [];
    for (const w of waiters) w();
  }
}
