#include "common/job-queue.h"

#include "common/clock.h"
#include <sched.h>

namespace weft {

bool JobQueue::TryPush(JobPtr job) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (items_.size() >= capacity_) return false;
    bool shortRun = job->shortRun;
    items_.push_back(std::move(job));
    size_.store(items_.size(), std::memory_order_release);
    // A short job left to the lanes still needs a thread standing by (Pop).
    wake = waiters_ > woken_ && (!shortRun || shortRunners_ + woken_ < kShortLanes || !standby_);
    if (wake) woken_++;
  }
  if (wake) cv_.notify_one();
  return true;
}

bool JobQueue::Pop(JobPtr* out, int64_t spinNs, Seat* seat) {
  auto woken = [seat] { return seat && seat->wake.load(std::memory_order_acquire); };
  if (spinNs > 0 && size_.load(std::memory_order_acquire) == 0) {
    // Yields rather than pauses, for the same reason as BridgeHost::AwaitShort.
    int64_t until = NowNs() + spinNs;
    while (size_.load(std::memory_order_acquire) == 0 && !woken() && NowNs() < until) sched_yield();
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (seat && seat->runningShort) {
    seat->runningShort = false;
    shortRunners_--;
  }
  // Take the head unless it is a short job and the lanes are busy with short
  // ones (and moving): then it is theirs, and this thread sleeps.
  auto mayTake = [this] {
    return !items_.empty() &&
           (!items_.front()->shortRun || shortRunners_ < kShortLanes || NowNs() - lastTakenNs_ > kStallNs);
  };
  while (!mayTake() && !woken()) {
    // Short jobs wait for the lanes: one thread stands by, waking every
    // kStallNs to see whether the lanes still move; the rest sleep.
    bool standby = !items_.empty() && !standby_;
    if (standby) standby_ = true;
    ++waiters_;
    if (standby) {
      cv_.wait_for(lock, std::chrono::nanoseconds(kStallNs));
      standby_ = false;
    } else {
      cv_.wait(lock);
    }
    --waiters_;
    // Every return from the wait pays off one counted wake-up, the standby's
    // too: whether its wait ran out says nothing about whether it took a
    // notify (libstdc++ reports a timeout by the clock after waking, so a
    // notify that reached it late looks like one), and a wake-up counted but
    // never paid off makes TryPush skip a sleeper for good, leaving jobs
    // queued while threads sleep. Paying off one too many only costs a spare
    // notify later; woken_ stays <= waiters_.
    if (woken_ > 0) woken_--;
  }
  if (woken()) {
    seat->wake.store(false, std::memory_order_release);
    if (!mayTake()) return false;
  }
  *out = std::move(items_.front());
  items_.pop_front();
  size_.store(items_.size(), std::memory_order_release);
  lastTakenNs_ = NowNs();
  bool wakeLane = false;
  if ((*out)->shortRun) {
    // Taken past busy lanes (they stalled, or it was the standby): if short
    // jobs still wait, another sleeper must stand by for them, or they would
    // wait for the next push or for a blocked lane to come back.
    if (shortRunners_ >= kShortLanes && !items_.empty() && !standby_ && waiters_ > woken_) {
      woken_++;
      wakeLane = true;
    }
    if (seat) {
      seat->runningShort = true;
      shortRunners_++;
    }
  } else if (!items_.empty() && items_.front()->shortRun && shortRunners_ + woken_ < kShortLanes && waiters_ > woken_) {
    // This one may run long: the short ones queued behind it get a lane of their own.
    woken_++;
    wakeLane = true;
  }
  lock.unlock();
  if (wakeLane) cv_.notify_one();
  return true;
}

void JobQueue::Wake(Seat* seat) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    seat->wake.store(true, std::memory_order_release);
  }
  // Every sleeper wakes and looks at its own seat: a wake is rare (Ruby's
  // unblocking function), a lost one would leave a Ruby thread deaf.
  cv_.notify_all();
}

void JobQueue::Leave(Seat* seat) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seat->runningShort) {
    seat->runningShort = false;
    shortRunners_--;
  }
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
