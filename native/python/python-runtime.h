// PythonRuntime: CPython 3.11 embedded on its own native thread.
//
// Threads and locks:
//  - The "weft-python" thread initialises the interpreter (so it is Python's
//    main thread), keeps ONE persistent PyThreadState for the rest of the
//    process (bridge-findings pitfall 12) and runs every handler. It holds the
//    GIL only while a job runs; it waits for work with the GIL released, so
//    Python threads started by handlers keep running.
//  - The "weft-py-irq" thread delivers timeouts and cancellations:
//    Interrupt() (watchdog thread, or the JS thread for a cancel) only
//    records the job id and wakes it; it takes the GIL and, if that job is
//    still the one running, sets an async HandlerTimeout (or Cancelled)
//    exception on the interpreter thread. An async exception lands only
//    between bytecodes, so it then also sends the interpreter thread the SDK's
//    wake signal (a real-time signal with a do-nothing Python handler): a
//    blocking call (time.sleep, a socket read) returns EINTR, Python runs
//    the handler, and the pending exception is raised out of the call. A C
//    call that retries EINTR itself still sees it only when it returns. The interpreter thread clears any
//    pending async exception, under the GIL, after every call, so a late
//    interrupt never reaches the next job (pitfall 15).
//  - The JS thread never touches Python; nothing here includes Python.h so
//    this header is safe for every translation unit (pitfall 18).
#pragma once
#include <pthread.h>

#include <condition_variable>
#include <mutex>

#include "common/runtime-worker.h"

namespace weft {

class PythonRuntime : public RuntimeWorker {
 public:
  PythonRuntime(CompletionSink* sink, TimeoutWatchdog* watchdog) : RuntimeWorker(RuntimeId::Python, sink, watchdog) {}
  void Interrupt(uint64_t jobId, Reason why) override;

 protected:
  void ThreadMain() override;

 private:
  void InterruptLoop();
  void RunJob(const JobPtr& job);

  // Opaque Python objects (PyObject*), owned by the interpreter thread.
  void* invoke_ = nullptr;      // weft._bridge.invoke(key, payload) -> str
  void* describe_ = nullptr;    // weft._bridge.describe(exc) -> (kind, class, message, backtrace, permanent)
  void* timeoutExc_ = nullptr;  // weft.HandlerTimeout
  void* cancelExc_ = nullptr;   // weft.Cancelled
  void* tstate_ = nullptr;      // the persistent PyThreadState
  unsigned long threadIdent_ = 0;
  pthread_t thread_{};  // the interpreter thread, for the wake signal
  int wakeSignal_ = 0;  // 0 when the SDK has none

  std::mutex irqMu_;
  std::condition_variable irqCv_;
  uint64_t irqRequest_ = 0;
  Reason irqReason_ = Reason::kTimeout;
  NativeThread irqThread_;
};

}  // namespace weft
