// JobQueue: a bounded FIFO of jobs for one runtime's threads.
//
// Threads: TryPush() from the JS thread (never blocks beyond the short
// internal mutex; a full queue is refused, not waited on). Pop() from any
// thread of the runtime's pool: it first spins for at most `spinNs` reading
// atomics (no lock; it yields its CPU between reads), then sleeps on the
// condvar. A push signals the condvar (one futex wake, one thread) only when
// some thread really sleeps on it, so a push that lands during a spin costs no
// system call on either side. Wake(flag) from any thread, including Ruby's
// unblocking function, sets that one waiter's flag and wakes the Pop() that
// waits with it, without an item. Drain() and Remove() from any thread. The
// queue is heap-allocated and never destroyed (a leaky singleton,
// bridge-findings pitfall 16) so exit() cannot destroy a condvar that a
// thread still waits on.
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
  explicit JobQueue(size_t capacity) : capacity_(capacity) {}

  bool TryPush(JobPtr job);
  // Blocks until a job arrives (returns true) or Wake(wake) is called
  // (false, and *wake is cleared), spinning for up to spinNs before it sleeps.
  bool Pop(JobPtr* out, int64_t spinNs = 0, std::atomic<bool>* wake = nullptr);
  // Wakes the Pop() that waits with this flag (without an item).
  void Wake(std::atomic<bool>* wake);
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
  int waiters_ = 0;
  // Written under mu_, also read without it by the spin.
  std::atomic<size_t> size_{0};
};

}  // namespace weft
