// PythonRuntime: CPython 3.11 embedded, its handlers running concurrently.
//
// Threads and locks:
//  - "weft-python" initialises the interpreter (so it is Python's main
//    thread), loads the handlers, then runs the asyncio event loop for the
//    rest of the process (weft._bridge.serve_loop). `async def` handlers run
//    as tasks on that loop: the JS thread puts their jobs on asyncQueue_ and
//    wakes the loop through an eventfd (one write per batch: a push only
//    writes when no wake-up is pending); the loop takes every queued job at
//    once (weft._native.take_async) and finishes each from its task
//    (weft._native.finish). Only that thread ever runs the loop.
//  - Plain `def` handlers run on a pool of "weft-py-N" threads (SetThreads;
//    default 1). Each pool thread has ONE persistent PyThreadState for its
//    whole life (bridge-findings pitfall 12), pops jobs from queue_ with the
//    GIL released, and holds the GIL only while a handler's Python code runs,
//    so blocking I/O and time.sleep in one handler let the others run. A
//    short call on an idle runtime is still answered on the JS thread's
//    bounded wait (BridgeHost::Call), with no more thread hops than before.
//  - "weft-py-irq" delivers timeouts and cancellations: Interrupt() (watchdog
//    or JS thread) only queues the job id and wakes it. Holding the GIL, it
//    finds the job: on a pool thread it sets an async HandlerTimeout (or
//    Cancelled) exception on that thread alone and wakes that thread's
//    time.sleep (weft._bridge.interrupted); on the loop it cancels that
//    task alone (weft._bridge.cancel_async). A pool thread clears any pending
//    async exception, under the GIL, after every call, so a late interrupt
//    never reaches its next job (pitfall 15).
//  - A handler that ignores its interrupt past the grace period loses its
//    thread: ReplaceThread() (watchdog thread) starts another, and the stuck
//    thread retires if its handler ever returns.
//  - slots_ and the thread counts are guarded by slotsMu_; asyncJobs_ is
//    touched only while holding the GIL. Lock order: the GIL, then slotsMu_
//    (nobody waits for the GIL while holding slotsMu_).
//  - The JS thread never touches Python (pitfall 13); nothing here includes
//    Python.h, so this header is safe for every translation unit (pitfall 18).
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/runtime-worker.h"

namespace weft {

class PythonRuntime : public RuntimeWorker {
 public:
  PythonRuntime(CompletionSink* sink, TimeoutWatchdog* watchdog)
      : RuntimeWorker(RuntimeId::Python, sink, watchdog), asyncQueue_(4096) {}
  void Interrupt(uint64_t jobId, Reason why) override;
  bool Unqueue(const Job* job) override;
  void SetThreads(uint32_t n) override;
  void SetQueueCapacity(size_t c) override;
  std::vector<std::string> AsyncHandlers() const override {
    return std::vector<std::string>(asyncKeys_.begin(), asyncKeys_.end());
  }

  // An async handler that keeps the event loop from running other handlers
  // for longer than this is reported (a "loop_blocked" event naming it).
  std::atomic<uint32_t> loopBlockedMs{100};

  // Called by the weft._native module, on the loop thread, holding the GIL.
  // They take and return PyObject* as void* (no Python.h in this header).
  void* TakeAsync();                                        // -> list of (id, key, payload)
  void FinishAsync(uint64_t id, bool ok, void* value);      // value: str, or describe()'s tuple
  void LoopBlocked(const std::string& handler, double ms);  // the loop monitor saw a block

 protected:
  void ThreadMain() override;
  bool Push(const JobPtr& job) override;
  std::vector<JobPtr> DrainQueued() override;
  void ReplaceThread(const JobPtr& job) override;

 private:
  struct Slot;
  void SpawnLocked();  // one more pool thread; slotsMu_ held
  void SlotMain(Slot* slot);
  bool RunJob(Slot* slot, const JobPtr& job);  // true: the slot must retire
  void InterruptLoop();
  void ServeLoop();

  // Opaque Python objects (PyObject*), created by the interpreter thread before load completes.
  void* invoke_ = nullptr;       // weft._bridge.invoke(key, payload) -> str
  void* describe_ = nullptr;     // weft._bridge.describe(exc) -> (kind, class, message, backtrace, permanent)
  void* timeoutExc_ = nullptr;   // weft.HandlerTimeout
  void* cancelExc_ = nullptr;    // weft.Cancelled
  void* slotStarted_ = nullptr;  // weft._bridge.slot_started(index)
  void* slotRetired_ = nullptr;  // weft._bridge.slot_retired()
  void* interrupted_ = nullptr;  // weft._bridge.interrupted(thread ident)
  void* cancelAsync_ = nullptr;  // weft._bridge.cancel_async(job id, reason)
  void* serveLoop_ = nullptr;    // weft._bridge.serve_loop(eventfd, blocked_ms)
  void* mainTstate_ = nullptr;   // the interpreter thread's PyThreadState

  std::mutex slotsMu_;
  std::vector<Slot*> slots_;  // every pool thread ever started (leaky; retired ones stay, idle)
  uint32_t wantThreads_ = 1;  // the pool's size
  uint32_t liveThreads_ = 0;  // pool threads not lost to a stuck handler
  bool poolOpen_ = false;     // the handlers loaded: threads may start

  // async def handlers: written once before the runtime is reported ready, read on the JS thread after.
  std::unordered_set<std::string> asyncKeys_;
  JobQueue asyncQueue_;
  int loopFd_ = -1;  // eventfd the loop watches
  std::atomic<bool> loopWakePending_{false};
  std::unordered_map<uint64_t, JobPtr> asyncJobs_;  // taken by the loop, not finished; the GIL guards it

  std::mutex irqMu_;
  std::condition_variable irqCv_;
  std::deque<std::pair<uint64_t, Reason>> irqRequests_;
  NativeThread irqThread_;
};

}  // namespace weft
