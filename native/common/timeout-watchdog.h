// TimeoutWatchdog: the one long-lived thread that enforces every job's
// timeoutMs and each runtime's grace period.
//
// Threads: Watch()/Unwatch() from any thread (JS thread at dispatch, runtime
// threads on completion); they take a short internal mutex and wake the
// watchdog only when a new deadline is earlier than the one it sleeps for.
// The watchdog thread claims a timed-out job (Queued/Running -> TimedOut),
// resolves it through the CompletionSink at once, asks the runtime to
// interrupt the handler (RuntimeWorker::Interrupt must not block), and after
// the runtime's grace period marks the runtime broken if the handler still
// has not returned. The object is a leaky singleton (never destroyed).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>

#include "common/job.h"
#include "common/native-thread.h"

namespace weft {

class RuntimeWorker;
class CompletionSink;

class TimeoutWatchdog {
 public:
  explicit TimeoutWatchdog(CompletionSink* sink) : sink_(sink) {}
  void Start();
  void Watch(const JobPtr& job, RuntimeWorker* rt);
  void Unwatch(Job* job);

 private:
  struct Entry {
    JobPtr job;
    RuntimeWorker* rt;
    bool grace;  // false: the job's deadline; true: the end of its grace period
  };
  void Loop();
  void Fire(Entry& e, int64_t now, std::unique_lock<std::mutex>& lock);

  CompletionSink* sink_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<int64_t, Entry> entries_;
  int64_t sleepingUntil_ = INT64_MAX;
  NativeThread thread_;
};

}  // namespace weft
