// RubyRuntime: CRuby 3.1 embedded, its handlers running on a pool of Ruby threads.
//
// Threads and locks:
//  - The "weft-ruby" thread calls ruby_setup()/ruby_options() and therefore
//    IS Ruby's main thread. Only threads Ruby knows ever call the Ruby C API
//    (a call from any other thread segfaults: pitfall 7): this main thread
//    and the Ruby threads it creates with rb_thread_create.
//  - Handlers run on a pool of Ruby threads ("weft-ruby-N", SetThreads;
//    default 1). Each waits for a job inside rb_thread_call_without_gvl()
//    with an unblocking function that wakes only it, runs the handler
//    holding the GVL, and Ruby releases the GVL while a handler sleeps or
//    waits for I/O, so the others run meanwhile.
//  - After loading, the main thread is the pool's control thread: it waits
//    (without the GVL) for requests from other native threads, then, holding
//    the GVL, carries them out: start pool threads (SetThreads, JS thread;
//    ReplaceThread, watchdog thread) and interrupt a handler (Interrupt(),
//    watchdog or JS thread) with Thread#raise(Weft::HandlerTimeout or
//    Weft::Cancelled) on exactly the pool thread running that job, after
//    checking, holding the GVL, that it still runs it, so a late interrupt
//    never hits the next job (pitfall 15).
//  - Every call into Ruby is wrapped in rb_protect; frames Ruby can longjmp
//    through hold no C++ objects with destructors (pitfall 8). Class, message
//    and backtrace of an exception are each read under their own rb_protect
//    (pitfall 6).
//  - ctlMu_ guards the request queue and the thread counts.
//  - Nothing here includes ruby.h, so this header is safe for every
//    translation unit (pitfall 18).
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include "common/runtime-worker.h"

namespace weft {

class RubyRuntime : public RuntimeWorker {
 public:
  RubyRuntime(CompletionSink* sink, TimeoutWatchdog* watchdog) : RuntimeWorker(RuntimeId::Ruby, sink, watchdog) {}
  void Interrupt(uint64_t jobId, Reason why) override;
  void SetThreads(uint32_t n) override;

  struct Slot;
  // Used by the C callbacks in ruby-runtime.cc.
  bool WaitForJob(JobPtr* job, JobQueue::Seat* seat) { return NextJob(job, seat); }  // without the GVL
  void WakeSlot(JobQueue::Seat* seat) { queue_.Wake(seat); }                         // ubf
  void SlotLoop(Slot* slot);                                                         // a pool thread
  bool WaitControl();       // without the GVL: true when there is work
  void WakeControl();       // ubf
  void ControlIteration();  // holding the GVL

 protected:
  void ThreadMain() override;
  void ReplaceThread(const JobPtr& job) override;

 private:
  void Serve();
  bool RunJob(Slot* slot, const JobPtr& job);  // true: the slot must retire
  void SpawnPending();                         // holding the GVL

  std::mutex ctlMu_;
  std::condition_variable ctlCv_;
  std::deque<std::pair<uint64_t, Reason>> irqRequests_;  // guarded by ctlMu_
  bool ctlWake_ = false;                                 // guarded by ctlMu_
  uint32_t wantThreads_ = 1;                             // guarded by ctlMu_
  uint32_t liveThreads_ = 0;                             // guarded by ctlMu_: started, not lost to a stuck handler
  std::vector<Slot*> slots_;                             // the control thread only (leaky)
};

}  // namespace weft
