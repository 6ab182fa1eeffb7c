// JobQueue: a bounded FIFO of jobs for one runtime thread.
//
// Threads: TryPush() from the JS thread (never blocks beyond the short
// internal mutex; a full queue is refused, not waited on). Pop() from the one
// runtime thread, which sleeps on the condvar. Interrupt() from any thread,
// including Ruby's unblocking function, wakes a Pop() without an item. Drain()
// from any thread. The queue is heap-allocated and never destroyed (a leaky
// singleton, bridge-findings pitfall 16) so exit() cannot destroy a condvar
// that a thread still waits on.
#pragma once
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
  // Blocks until a job arrives (returns true) or Interrupt() is called (false).
  bool Pop(JobPtr* out);
  void Interrupt();
  std::vector<JobPtr> Drain();
  void SetCapacity(size_t c);
  size_t Size();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobPtr> items_;
  size_t capacity_;
  int waiters_ = 0;
  bool interrupted_ = false;
};

}  // namespace weft
