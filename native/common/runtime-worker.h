// RuntimeWorker: what every dispatch target (python, ruby, typescript) shares:
// its thread, bounded queue, breaker, counters and the broken flag.
//
// Threads:
//  - Start(), Enqueue(), Configure() run on the JS thread.
//  - ThreadMain() (subclass) runs on the runtime's own native thread for the
//    rest of the process; BeginJob()/FinishJob() are called only from there
//    (the typescript target calls FinishJob's logic from the JS thread
//    through BridgeHost instead). BeginJob() starts the job's timeout.
//  - lastFailure is read and written on the JS thread only (BridgeHost).
//  - Interrupt() is called by the TimeoutWatchdog thread (a timeout) or the
//    JS thread (BridgeHost::Cancel) and must not block.
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
  void SetQueueCapacity(size_t c) { queue_.SetCapacity(c); }
  size_t queueCapacity() { return queue_.Capacity(); }

  // Why a running handler is interrupted: it chooses the exception raised in it.
  enum class Reason { kTimeout, kCancel };
  // Watchdog or JS thread: interrupt the handler of `jobId` if it is still the one running.
  virtual void Interrupt(uint64_t jobId, Reason why) {}
  // JS thread: take a cancelled job out of the queue before it starts.
  bool Unqueue(const Job* job) { return queue_.Remove(job); }
  // Any thread.
  void MarkBroken(const std::string& reason);
  bool broken() const { return broken_.load(std::memory_order_acquire); }
  Phase phase() const { return Phase(phase_.load(std::memory_order_acquire)); }
  std::string brokenReason() const;  // JS thread, after broken() is true

  RuntimeStats stats;
  CircuitBreaker breaker;
  std::atomic<uint32_t> graceMs{2000};
  // How long the JS thread may wait synchronously for a short call's result
  // before it lets the call finish asynchronously (0 = never wait).
  std::atomic<uint32_t> syncWaitUs{0};
  // How long the runtime thread spins for the next job before it sleeps.
  std::atomic<uint32_t> idleSpinUs{0};

  // The runtime's last own failure (timeout, broken, slow call), which an
  // open breaker names in its rejections. JS thread only.
  struct Failure {
    std::string errorClass;
    std::string message;
    ErrorKind kind = ErrorKind::None;
  } lastFailure;

 protected:
  virtual void ThreadMain() = 0;
  // Runtime thread: Queued -> Running and start its timeout. False if the job
  // was claimed meanwhile (the runtime was marked broken).
  bool BeginJob(const JobPtr& job);
  // Runtime thread: wait for the next job (false when woken without one).
  bool NextJob(JobPtr* job) { return queue_.Pop(job, int64_t(idleSpinUs.load(std::memory_order_relaxed)) * 1000); }
  // Runtime thread: the handler came back. Claims the job unless the watchdog did.
  void FinishJob(const JobPtr& job, bool ok, std::string json, ForeignError error);
  void ReportLoaded(bool ok, std::vector<std::string> handlers, ForeignError error);

  RuntimeId id_;
  CompletionSink* sink_;
  TimeoutWatchdog* watchdog_;
  JobQueue queue_;
  LoadOptions opts_;
  std::atomic<uint64_t> runningJob_{0};

 private:
  std::atomic<int> phase_{kIdle};
  std::atomic<bool> broken_{false};
  std::string brokenReason_;  // written once before broken_ is set
  NativeThread thread_;
};

}  // namespace weft
