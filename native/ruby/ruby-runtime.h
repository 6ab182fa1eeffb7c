// RubyRuntime: CRuby 3.1 embedded on its own native thread.
//
// Threads and locks:
//  - The "weft-ruby" thread calls ruby_setup()/ruby_options() and therefore
//    IS Ruby's main thread; it is the ONLY native thread that ever calls the
//    Ruby C API (a call from any other thread segfaults: pitfall 7). It waits
//    for work inside rb_thread_call_without_gvl() with an unblocking function,
//    so Ruby threads started by handlers keep running between jobs.
//  - Timeouts and cancellations: Interrupt() (TimeoutWatchdog thread, or the
//    JS thread for a cancel) only records the job id and signals a condvar. A long-lived Ruby thread created with
//    rb_thread_create waits on that condvar without the GVL, then, holding
//    the GVL, checks that the job is still the one running and calls
//    Thread#raise(Weft::HandlerTimeout or Weft::Cancelled) on the main Ruby thread, so a late
//    timeout never hits the next job (pitfall 15).
//  - Every call into Ruby is wrapped in rb_protect; frames Ruby can longjmp
//    through hold no C++ objects with destructors (pitfall 8). Class, message
//    and backtrace of an exception are each read under their own rb_protect
//    (pitfall 6).
//  - Nothing here includes ruby.h, so this header is safe for every
//    translation unit (pitfall 18).
#pragma once
#include <condition_variable>
#include <mutex>

#include "common/runtime-worker.h"

namespace weft {

class RubyRuntime : public RuntimeWorker {
 public:
  RubyRuntime(CompletionSink* sink, TimeoutWatchdog* watchdog) : RuntimeWorker(RuntimeId::Ruby, sink, watchdog) {}
  void Interrupt(uint64_t jobId, Reason why) override;

  // Used by the C callbacks in ruby-runtime.cc.
  JobQueue& queue() { return queue_; }
  bool WaitForJob(JobPtr* job) { return NextJob(job); }  // without the GVL
  uint64_t runningJob() const { return runningJob_.load(); }
  bool WaitInterruptRequest(uint64_t* jobId, bool* cancel);  // without the GVL
  void WakeInterruptWaiter();                                // ubf

 protected:
  void ThreadMain() override;

 private:
  void Serve();
  void RunJob(const JobPtr& job);

  std::mutex irqMu_;
  std::condition_variable irqCv_;
  uint64_t irqRequest_ = 0;
  Reason irqReason_ = Reason::kTimeout;
  bool irqWake_ = false;
};

}  // namespace weft
