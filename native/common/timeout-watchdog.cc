#include "common/timeout-watchdog.h"

#include "common/clock.h"
#include "common/completion-sink.h"
#include "common/runtime-worker.h"

namespace weft {

void TimeoutWatchdog::Start() {
  thread_.Start("weft-watchdog", 256u << 10, [this] { Loop(); });
}

void TimeoutWatchdog::Watch(const JobPtr& job, RuntimeWorker* rt) {
  int64_t deadline = job->startNs + int64_t(job->timeoutMs) * 1000000;
  job->deadlineNs = deadline;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.emplace(deadline, Entry{job, rt, false});
    wake = deadline < sleepingUntil_;
    if (wake) sleepingUntil_ = 0;  // one wake-up is enough until it sleeps again
  }
  if (wake) cv_.notify_one();
}

void TimeoutWatchdog::Unwatch(Job* job) {
  int64_t deadline = job->deadlineNs;
  if (deadline == 0) return;  // never watched (still queued when it was claimed)
  std::lock_guard<std::mutex> lock(mu_);
  auto range = entries_.equal_range(deadline);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second.job.get() == job && !it->second.grace) {
      entries_.erase(it);
      return;
    }
  }
}

void TimeoutWatchdog::WatchGrace(const JobPtr& job, RuntimeWorker* rt) {
  int64_t graceAt = NowNs() + int64_t(rt->graceMs.load()) * 1000000;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.emplace(graceAt, Entry{job, rt, true});
    wake = graceAt < sleepingUntil_;
    if (wake) sleepingUntil_ = 0;
  }
  if (wake) cv_.notify_one();
}

void TimeoutWatchdog::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    int64_t now = NowNs();
    while (!entries_.empty() && entries_.begin()->first <= now) {
      Entry e = std::move(entries_.begin()->second);
      entries_.erase(entries_.begin());
      Fire(e, now, lock);
    }
    // A spurious or stale wake-up (the deadline it slept for was unwatched)
    // just goes round again; nothing here depends on why it woke.
    if (entries_.empty()) {
      sleepingUntil_ = INT64_MAX;
      cv_.wait(lock);
    } else {
      sleepingUntil_ = entries_.begin()->first;
      cv_.wait_for(lock, std::chrono::nanoseconds(sleepingUntil_ - now));
    }
    sleepingUntil_ = 0;  // awake: Watch() need not notify
  }
}

// Called with the lock held; drops it around calls into the sink/runtime.
void TimeoutWatchdog::Fire(Entry& e, int64_t now, std::unique_lock<std::mutex>& lock) {
  Job* job = e.job.get();
  if (e.grace) {
    if (job->handlerState.load(std::memory_order_acquire) == kHandlerOut) {
      lock.unlock();
      std::string ignored = job->state.load() == kCancelled
                                ? std::string("its cancellation (its task was cancelled)")
                                : "its timeout of " + std::to_string(job->timeoutMs) + " ms";
      e.rt->HandlerStuck(e.job, "handler \"" + job->handler + "\" ignored " + ignored + " and had not returned " +
                                    std::to_string(e.rt->graceMs.load()) + " ms later");
      lock.lock();
    }
    return;
  }
  // Only running jobs are watched (their timeout counts from the handler's start).
  if (!job->Claim(kRunning, kTimedOut)) return;  // finished in the meantime
  job->endNs = now;
  job->error.kind = ErrorKind::Timeout;
  job->error.errorClass = "HandlerTimeout";
  job->error.message = std::string("handler \"") + job->handler + "\" did not return within " +
                       std::to_string(job->timeoutMs) + " ms of starting (" + e.rt->name() +
                       "); the runtime was asked to interrupt it";
  int64_t graceAt = now + int64_t(e.rt->graceMs.load()) * 1000000;
  entries_.emplace(graceAt, Entry{e.job, e.rt, true});
  JobPtr keep = e.job;
  RuntimeWorker* rt = e.rt;
  lock.unlock();
  sink_->Resolve(keep);
  rt->Interrupt(keep->id, RuntimeWorker::Reason::kTimeout);
  lock.lock();
}

}  // namespace weft
