/**
 * One timer that fires at the earliest due time it has been told about: a
 * process that scheduled a retry (a worker that recorded a failure, an
 * orchestrator that read the next `run_after`) dispatches it exactly when it
 * is due instead of waiting for the next sweep. A later time than the one
 * set changes nothing; an earlier one moves the timer forward. Once fired it
 * forgets its time, so the next `wakeAt` sets it again.
 *
 * The timer never keeps the process alive (it is unref'd), and after `stop()`
 * it ignores every `wakeAt`: the sweep is the safety net for what it misses.
 *
 * @example
 *   const retries = new RetryTimer(() => void dispatchDue());
 *   retries.wakeAt(Date.now() + 500); // fires about 500 ms from now
 *   retries.wakeAt(Date.now() + 900); // ignored: an earlier time is set
 *   retries.stop();
 */
/** setTimeout's longest delay (about 24.8 days): a longer one fires at once, with a warning. */
const MAX_TIMER_MS = 2_147_483_647;

export class RetryTimer {
  private timer: NodeJS.Timeout | undefined;
  private at = Infinity;
  private stopped = false;

  /** `fire` runs once per due time; it must not throw (it runs from a timer). */
  constructor(private readonly fire: () => void) {}

  /** Fire at `at` (epoch ms) unless an earlier time is set already. */
  wakeAt(at: number): void {
    if (this.stopped || at >= this.at) return;
    clearTimeout(this.timer);
    this.at = at;
    // 2 ms late: a timer may fire a little early, and the database compares
    // run_after with its own clock, so a retry would not be due yet.
    const wait = Math.max(0, at - Date.now()) + 2;
    this.timer = setTimeout(
      () => {
        this.at = Infinity;
        // A time further away than a timer reaches (a delayed start next month) is reached in legs.
        if (wait > MAX_TIMER_MS) this.wakeAt(at);
        else this.fire();
      },
      Math.min(wait, MAX_TIMER_MS),
    );
    this.timer.unref();
  }

  /** Cancel the pending time, and ignore every later `wakeAt`. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
