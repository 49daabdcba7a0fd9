/**
 * Bounds the SFTP requests a channel has outstanding. Latency, not bandwidth, limits an SFTP
 * channel that waits for each reply, so many requests are kept in flight; the bound keeps memory
 * in check and stops one file from starving the others on the same channel. Requests leave in
 * the order they were submitted.
 */
export class RequestWindow {
  private requests = 0;
  private bytes = 0;
  private readonly queue: Array<{ size: number; send: (release: () => void) => void }> = [];
  private pumping = false;

  constructor(readonly maxRequests: number, readonly maxBytes: number) {}

  get outstanding(): { requests: number; bytes: number; queued: number } {
    return { requests: this.requests, bytes: this.bytes, queued: this.queue.length };
  }

  /**
   * Call `send` once the window has room for `size` more bytes. `send` must call `release` exactly
   * once, when its request has been answered (or has failed).
   */
  submit(size: number, send: (release: () => void) => void): void {
    this.queue.push({ size, send });
    this.pump();
  }

  private pump(): void {
    // A release that fires synchronously inside `send` must not recurse into a second pump.
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && this.hasRoom(this.queue[0].size)) {
        const { size, send } = this.queue.shift()!;
        this.requests++;
        this.bytes += size;
        let released = false;
        send(() => {
          if (released) return;
          released = true;
          this.requests--;
          this.bytes -= size;
          this.pump();
        });
      }
    } finally {
      this.pumping = false;
    }
  }

  private hasRoom(size: number): boolean {
    if (this.requests >= this.maxRequests) return false;
    // An empty window always admits one request, however large, so nothing waits forever.
    return this.requests === 0 || this.bytes + size <= this.maxBytes;
  }
}
