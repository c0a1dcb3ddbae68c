/**
 * The one restart path. Settings, interpreter and trust changes `schedule()` a restart, debounced so a
 * burst of changes restarts once; the Restart Server command calls `now()`. Restarts never overlap: a
 * request that arrives while one is running is coalesced into a single follow-up restart.
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export const RESTART_DELAY_MS = 1000;

export class RestartScheduler {
  private timer: unknown;
  private reasons: string[] = [];
  private running: Promise<void> | undefined;
  private queued = false;
  private disposed = false;

  constructor(
    private readonly restart: (reason: string) => Promise<void>,
    private readonly delayMs: number = RESTART_DELAY_MS,
    private readonly timers: Timers = realTimers,
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  /** Restart after `delayMs` of quiet; every call pushes the deadline back. */
  schedule(reason: string): void {
    if (this.disposed) return;
    this.reasons.push(reason);
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.fire();
    }, this.delayMs);
  }

  /** Restart immediately (cancelling a pending scheduled one); resolves when that restart finished. */
  now(reason: string): Promise<void> {
    if (this.disposed) return Promise.resolve();
    this.reasons.push(reason);
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
    return this.fire();
  }

  get pending(): boolean {
    return this.timer !== undefined;
  }

  private async fire(): Promise<void> {
    if (this.running) {
      this.queued = true;
      await this.running;
      // the first waiter to wake runs the coalesced follow-up; the others wait on it
      if (!this.queued) return this.running ?? Promise.resolve();
      this.queued = false;
      return this.fire();
    }
    const reason = [...new Set(this.reasons)].join(', ');
    this.reasons = [];
    this.running = this.restart(reason).catch((e) => this.onError(e)).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
