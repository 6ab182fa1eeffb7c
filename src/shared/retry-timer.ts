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
/** The longest delay setTimeout takes (2^31 - 1 ms); a longer one fires after 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

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
    // run_after with its own clock, so a retry would not be due yet. A time
    // further than setTimeout can count (24.8 days: a task delayed to next
    // year) fires at that limit instead of at once (Node's overflow rule),
    // and the caller, finding nothing due, sets the next time again.
    this.timer = setTimeout(
      () => {
        this.at = Infinity;
        this.fire();
      },
      Math.min(Math.max(0, at - Date.now()) + 2, MAX_TIMEOUT_MS),
    );
    this.timer.unref();
  }

  /** Cancel the pending time, and ignore every later `wakeAt`. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
