// JobQueue: a bounded FIFO of jobs for one runtime's threads.
//
// Threads: TryPush() from the JS thread (never blocks beyond the short
// internal mutex; a full queue is refused, not waited on). Pop() from any
// thread of the runtime's pool, each with a Seat of its own: it first spins
// for at most `spinNs` reading atomics (no lock; it yields its CPU between
// reads), then sleeps on the condvar. Wake(seat) from any thread, including
// Ruby's unblocking function, sets that one seat's flag and wakes its Pop()
// without an item. Leave(seat) when a thread retires for good. Drain() and
// Remove() from any thread. The queue is heap-allocated and never destroyed
// (a leaky singleton, bridge-findings pitfall 16) so exit() cannot destroy a
// condvar that a thread still waits on.
//
// Who is woken (all under mu_): a job that may run long (Job::shortRun
// false) wakes one sleeping thread, so it never waits behind another
// handler. A short job (its handler's recent runs took microseconds) wakes
// one only while fewer than kShortLanes threads are running short jobs or
// on their way to: all of a pool's threads share one GIL/GVL, so a burst of
// short jobs spread over 32 threads only makes them queue for the lock and
// pay a wake-up and a lock hand-over each (measured: the pipelined echo of
// npm run bench:bridge took 36 µs a call on 32 threads, 31 on 2, 28.5 on 1),
// while one lane drains it back to back; threads beyond the lanes do not
// take short jobs while the lanes move. Two guards keep short jobs from
// waiting behind a job that runs long: a thread that takes a long job while
// short ones wait behind it wakes a lane for them, and while short jobs wait
// one thread stands by, looking every kStallNs whether the lanes still move:
// when no job was taken for that long (a "short" handler blocked this time)
// it takes the next one itself, and wakes a sleeper to stand by in its place
// while short jobs still wait. Every return from a wait, timed out or not,
// pays off one counted wake-up (woken_), so the count never exceeds the
// sleepers and a push never skips a sleeper that nobody is waking.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

#include "common/job.h"

namespace weft {

class JobQueue {
 public:
  // What one pool thread is to the queue between its Pop() calls.
  struct Seat {
    std::atomic<bool> wake{false};  // Wake() was called: return without an item
    bool runningShort = false;      // guarded by mu_: its last job was a short one
  };
  static constexpr int kShortLanes = 1;
  static constexpr int64_t kStallNs = 500 * 1000;

  explicit JobQueue(size_t capacity) : capacity_(capacity) {}

  bool TryPush(JobPtr job);
  // Blocks until a job arrives (returns true) or Wake(seat) is called
  // (false, and the seat's flag is cleared), spinning for up to spinNs before
  // it sleeps. `seat` may be null for a queue with one thread and no waker.
  bool Pop(JobPtr* out, int64_t spinNs = 0, Seat* seat = nullptr);
  // Wakes the Pop() of this seat (without an item).
  void Wake(Seat* seat);
  // The seat's thread will never Pop() again (it retires).
  void Leave(Seat* seat);
  std::vector<JobPtr> Drain();
  // Takes one job out (a cancelled call that has not started); false if it is not queued.
  bool Remove(const Job* job);
  void SetCapacity(size_t c);
  size_t Capacity();
  size_t Size();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobPtr> items_;
  size_t capacity_;
  int waiters_ = 0;          // threads asleep on cv_
  int woken_ = 0;            // of those, signalled and not yet up
  int shortRunners_ = 0;     // threads running a short job now
  int64_t lastTakenNs_ = 0;  // when a thread last took a job
  bool standby_ = false;     // a thread waits with a timeout for stalled lanes
  // Written under mu_, also read without it by the spin.
  std::atomic<size_t> size_{0};
};

}  // namespace weft
