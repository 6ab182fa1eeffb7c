#include "common/job-queue.h"

#include "common/clock.h"
#include <sched.h>

namespace weft {

bool JobQueue::TryPush(JobPtr job) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (items_.size() >= capacity_) return false;
    items_.push_back(std::move(job));
    size_.store(items_.size(), std::memory_order_release);
    wake = waiters_ > 0;
  }
  if (wake) cv_.notify_one();
  return true;
}

bool JobQueue::Pop(JobPtr* out, int64_t spinNs, std::atomic<bool>* wake) {
  auto woken = [wake] { return wake && wake->load(std::memory_order_acquire); };
  if (spinNs > 0 && size_.load(std::memory_order_acquire) == 0) {
    // Yields rather than pauses, for the same reason as BridgeHost::AwaitShort.
    int64_t until = NowNs() + spinNs;
    while (size_.load(std::memory_order_acquire) == 0 && !woken() && NowNs() < until) sched_yield();
  }
  std::unique_lock<std::mutex> lock(mu_);
  while (items_.empty() && !woken()) {
    ++waiters_;
    cv_.wait(lock);
    --waiters_;
  }
  if (woken()) {
    wake->store(false, std::memory_order_release);
    if (items_.empty()) return false;
  }
  *out = std::move(items_.front());
  items_.pop_front();
  size_.store(items_.size(), std::memory_order_release);
  return true;
}

void JobQueue::Wake(std::atomic<bool>* wake) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake->store(true, std::memory_order_release);
  }
  // Every sleeper wakes and looks at its own flag: a wake is rare (Ruby's
  // unblocking function), a lost one would leave a Ruby thread deaf.
  cv_.notify_all();
}

std::vector<JobPtr> JobQueue::Drain() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<JobPtr> out(std::make_move_iterator(items_.begin()), std::make_move_iterator(items_.end()));
  items_.clear();
  size_.store(0, std::memory_order_release);
  return out;
}

bool JobQueue::Remove(const Job* job) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (it->get() == job) {
      items_.erase(it);
      size_.store(items_.size(), std::memory_order_release);
      return true;
    }
  }
  return false;
}

void JobQueue::SetCapacity(size_t c) {
  std::lock_guard<std::mutex> lock(mu_);
  capacity_ = c ? c : 1;
}

size_t JobQueue::Capacity() {
  std::lock_guard<std::mutex> lock(mu_);
  return capacity_;
}

size_t JobQueue::Size() { return size_.load(std::memory_order_acquire); }

}  // namespace weft
