// RuntimeWorker: what every dispatch target (python, ruby, typescript) shares:
// its threads, bounded queue, breaker, counters, stuck handlers and the
// broken flag.
//
// Threads:
//  - Start(), Enqueue(), Configure() run on the JS thread.
//  - ThreadMain() (subclass) runs on the runtime's own native thread for the
//    rest of the process. Python and Ruby run their handlers on a pool of
//    threads (SetThreads); BeginJob()/FinishJob() are called from whichever
//    of them runs the job (the typescript target calls FinishJob's logic from
//    the JS thread through BridgeHost instead). BeginJob() starts the job's
//    timeout.
//  - lastFailure is read and written on the JS thread only (BridgeHost).
//  - Interrupt() is called by the TimeoutWatchdog thread (a timeout) or the
//    JS thread (BridgeHost::Cancel), must not block, and must reach only the
//    handler of that one job: the others keep running.
//  - HandlerStuck() runs on the watchdog thread: a handler ignored its
//    interrupt past the grace period. Its thread is replaced (the pool keeps
//    its size) and counted; only when maxStuck handlers are stuck at once is
//    the runtime marked broken. The thread that runs it retires when (if
//    ever) the handler returns (FinishJob() tells it so).
//  - MarkBroken() may be called from any thread; it is idempotent.
//  - stats and breaker are atomics, read from anywhere without locks.
// Instances are heap-allocated once per process and never destroyed.
#pragma once
#include <atomic>
#include <string>
#include <vector>

#include "common/circuit-breaker.h"
#include "common/job-queue.h"
#include "common/native-thread.h"
#include "common/runtime-stats.h"

namespace weft {

class CompletionSink;
class TimeoutWatchdog;

struct LoadOptions {
  std::vector<std::string> handlerDirs;  // every *.py / *.rb under these is loaded
  std::string sdkDir;                    // workers/python or workers/ruby
  // A JSON object the SDK's load_handlers takes as its second argument: where
  // the handlers' own dependencies are ({"venv": ...} for Python, {"gemfile":
  // ...} for Ruby); "{}" for none. Opaque here, so a new setting needs no C++.
  std::string setupJson = "{}";
};

class RuntimeWorker {
 public:
  enum Phase : int { kIdle = 0, kLoading = 1, kReady = 2, kFailed = 3 };
  enum Admission { kAccepted, kQueueFull, kBrokenRuntime, kNotReady };

  RuntimeWorker(RuntimeId id, CompletionSink* sink, TimeoutWatchdog* watchdog)
      : id_(id), sink_(sink), watchdog_(watchdog), queue_(4096) {}
  virtual ~RuntimeWorker() = default;

  RuntimeId id() const { return id_; }
  const char* name() const { return RuntimeName(id_); }

  // JS thread. Returns an error message, or "" when the thread started.
  std::string Start(LoadOptions opts);
  Admission Enqueue(const JobPtr& job);
  virtual void SetQueueCapacity(size_t c) { queue_.SetCapacity(c); }
  size_t queueCapacity() { return queue_.Capacity(); }
  // JS thread: how many handlers may run at once on threads of their own
  // (python, ruby). The pool grows to n, before or after load(); it never
  // shrinks. The default is 1.
  virtual void SetThreads(uint32_t n) {}

  // Why a running handler is interrupted: it chooses the exception raised in it.
  enum class Reason { kTimeout, kCancel };
  // JS thread, once loaded: the handler keys that run on an event loop
  // rather than a thread (python's `async def` handlers).
  virtual std::vector<std::string> AsyncHandlers() const { return {}; }
  // Watchdog or JS thread: interrupt the handler of `jobId` if it is still running.
  virtual void Interrupt(uint64_t jobId, Reason why) {}
  // JS thread: take a cancelled job out of its queue before it starts.
  virtual bool Unqueue(const Job* job) { return queue_.Remove(job); }
  // Watchdog thread: `job`'s handler ignored its interrupt past the grace period.
  void HandlerStuck(const JobPtr& job, const std::string& why);
  // Any thread.
  void MarkBroken(const std::string& reason);
  bool broken() const { return broken_.load(std::memory_order_acquire); }
  Phase phase() const { return Phase(phase_.load(std::memory_order_acquire)); }
  std::string brokenReason() const;  // JS thread, after broken() is true

  RuntimeStats stats;
  CircuitBreaker breaker;
  std::atomic<uint32_t> graceMs{2000};
  // Stuck handlers at once that mark the runtime broken (the worker then
  // recycles its process); fewer are only reported.
  std::atomic<uint32_t> maxStuck{1};
  // How long the JS thread may wait synchronously for a short call's result
  // before it lets the call finish asynchronously (0 = never wait).
  std::atomic<uint32_t> syncWaitUs{0};
  // How long an idle runtime thread spins for the next job before it sleeps.
  std::atomic<uint32_t> idleSpinUs{0};

  // The runtime's last own failure (timeout, stuck or broken, slow call),
  // which an open breaker names in its rejections. JS thread only.
  struct Failure {
    std::string errorClass;
    std::string message;
    ErrorKind kind = ErrorKind::None;
  } lastFailure;

 protected:
  virtual void ThreadMain() = 0;
  // JS thread, from Enqueue(): put an admitted job on its queue (false: full).
  virtual bool Push(const JobPtr& job) { return queue_.TryPush(job); }
  // Any thread: empty every queue of the runtime.
  virtual std::vector<JobPtr> DrainQueued() { return queue_.Drain(); }
  // Watchdog thread: the thread running `job` is lost to a stuck handler;
  // start another so the pool keeps its size.
  virtual void ReplaceThread(const JobPtr& job) {}
  // Runtime thread: Queued -> Running and start its timeout. False if the job
  // was claimed meanwhile (cancelled, or the runtime was marked broken).
  bool BeginJob(const JobPtr& job);
  // A runtime thread: wait for the next job (false when woken without one).
  bool NextJob(JobPtr* job, JobQueue::Seat* seat = nullptr) {
    return queue_.Pop(job, int64_t(idleSpinUs.load(std::memory_order_relaxed)) * 1000, seat);
  }
  // The handler came back (or a begun job will never run it). Returns true
  // when it had been declared stuck: its thread was replaced and must retire.
  bool HandlerReturned(const JobPtr& job);
  // Runtime thread: the handler came back with this outcome. Claims the job
  // unless the watchdog or a cancel did. Returns HandlerReturned()'s answer.
  bool FinishJob(const JobPtr& job, bool ok, std::string json, ForeignError error);
  void ReportLoaded(bool ok, std::vector<std::string> handlers, ForeignError error);

  RuntimeId id_;
  CompletionSink* sink_;
  TimeoutWatchdog* watchdog_;
  JobQueue queue_;
  LoadOptions opts_;

 private:
  // Settles every queued job as aborted because the runtime is broken.
  void AbortQueued();

  std::atomic<int> phase_{kIdle};
  std::atomic<bool> broken_{false};
  std::string brokenReason_;  // written once before broken_ is set
  NativeThread thread_;
};

}  // namespace weft
