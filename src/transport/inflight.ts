/**
 * Bookkeeping shared by every RemoteFile: which writes are still unacknowledged, and the first
 * failure. Writers issue writes without awaiting them and learn about failures at the next
 * barrier, so the first error is kept and replayed; later errors are usually consequences of it.
 */
export class WriteTracker {
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown = undefined;

  /** The first failure, if any write (or the connection under it) has failed. */
  get error(): unknown {
    return this.failure;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Record a failure that did not come from a write (a broken connection, a failed close). */
  fail(e: unknown): void {
    if (this.failure === undefined) this.failure = e;
  }

  /**
   * Follow a write until it settles. The returned promise is marked handled, so a caller that
   * never awaits it does not crash the process with an unhandled rejection; the error is still
   * delivered to whoever awaits it, and to the next `barrier`.
   */
  track(write: Promise<void>): Promise<void> {
    const tracked = write.then(
      () => { this.pending.delete(tracked); },
      (e: unknown) => {
        this.pending.delete(tracked);
        this.fail(e);
        throw e;
      },
    );
    this.pending.add(tracked);
    tracked.catch(() => {});
    return tracked;
  }

  /** Resolve once every write tracked so far has settled; reject with the first failure. */
  async barrier(): Promise<void> {
    if (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    if (this.failure !== undefined) throw this.failure;
  }
}
