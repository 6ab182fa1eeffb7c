// TimeoutWatchdog: the one long-lived thread that enforces every job's
// timeoutMs and each runtime's grace period.
//
// A job's timeout counts from the moment its handler starts (Job::startNs),
// never from the enqueue: a call waiting in the queue behind a slow one is
// not watched yet and cannot time out because of the wait. (Queued calls are
// still bounded: each call ahead of them either returns, times out, or marks
// the runtime broken after its grace period, which fails the queue at once.)
//
// Threads: Watch() from the thread that starts the handler (a runtime thread,
// or the JS thread for inline typescript handlers), Unwatch() from whichever
// thread finishes it; both take a short internal mutex. The watchdog thread is
// woken only when a new deadline is earlier than the time it already sleeps
// until. It does not wake when a deadline is removed, so it keeps sleeping
// until a deadline that may no longer exist; in the steady state of similar
// timeouts every new deadline is later than that one and Watch() costs no
// system call and no thread wake-up on the call path. The watchdog thread
// claims a timed-out job (Running -> TimedOut), resolves it through the
// CompletionSink at once, asks the runtime to interrupt the handler
// (RuntimeWorker::Interrupt must not block), and after the runtime's grace
// period reports the handler stuck if it still has not returned
// (RuntimeWorker::HandlerStuck: its thread is replaced, or the runtime is
// marked broken when too many are stuck at once). The object is a leaky
// singleton (never destroyed).
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
  // The job's handler starts now (job->startNs is set): watch its timeoutMs.
  void Watch(const JobPtr& job, RuntimeWorker* rt);
  // The job was claimed by someone else than the watchdog; a no-op for a job never watched.
  void Unwatch(Job* job);
  // A running job was cancelled (claimed by the JS thread) and its handler
  // interrupted: like a timeout, report it stuck if the handler has not
  // returned within the grace period.
  void WatchGrace(const JobPtr& job, RuntimeWorker* rt);

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
  int64_t sleepingUntil_ = 0;  // 0 while awake; INT64_MAX while it sleeps with nothing to watch
  NativeThread thread_;
};

}  // namespace weft
