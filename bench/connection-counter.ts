/**
 * What the idle-memory servers share, in a module of its own so that the
 * bare servers (`idle-server.ts`) and netloop's (`netloop-servers.ts`, loaded
 * on demand) import it without importing each other.
 *
 * @module
 */

/**
 * Counts open connections and resolves waiters once a count is reached.
 *
 * ```
 *   count: 1834    waiters: [ (2000, resolve) ]  ── resolved and removed when count >= 2000
 * ```
 */
export class ConnectionCounter {
  private value = 0;
  private waiters: Array<{ wanted: number; resolve: () => void }> = [];

  /** Connections open now. */
  get count(): number {
    return this.value;
  }

  /** One more connection is open. */
  opened(): void {
    this.value++;
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.wanted <= this.value);
    this.waiters = this.waiters.filter((w) => w.wanted > this.value);
    for (const w of ready) w.resolve();
  }

  /** One connection closed. */
  closed(): void {
    this.value--;
  }

  /** Resolves once at least `wanted` connections are open. */
  waitFor(wanted: number): Promise<void> {
    if (this.value >= wanted) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ wanted, resolve }));
  }
}

/** A held-connections server: its port and its connection counter. */
export interface IdleServer {
  port: number;
  counter: ConnectionCounter;
}
