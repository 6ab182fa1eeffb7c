#include "common/job-queue.h"

namespace weft {

bool JobQueue::TryPush(JobPtr job) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (items_.size() >= capacity_) return false;
    items_.push_back(std::move(job));
    wake = waiters_ > 0;
  }
  if (wake) cv_.notify_one();
  return true;
}

bool JobQueue::Pop(JobPtr* out) {
  std::unique_lock<std::mutex> lock(mu_);
  while (items_.empty() && !interrupted_) {
    ++waiters_;
    cv_.wait(lock);
    --waiters_;
  }
  if (interrupted_) {
    interrupted_ = false;
    if (items_.empty()) return false;
  }
  *out = std::move(items_.front());
  items_.pop_front();
  return true;
}

void JobQueue::Interrupt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
  }
  cv_.notify_all();
}

std::vector<JobPtr> JobQueue::Drain() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<JobPtr> out(std::make_move_iterator(items_.begin()), std::make_move_iterator(items_.end()));
  items_.clear();
  return out;
}

void JobQueue::SetCapacity(size_t c) {
  std::lock_guard<std::mutex> lock(mu_);
  capacity_ = c ? c : 1;
}

size_t JobQueue::Size() {
  std::lock_guard<std::mutex> lock(mu_);
  return items_.size();
}

}  // namespace weft
