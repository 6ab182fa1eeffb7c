// SignalChain: undoes what CRuby's start-up does to the process's signal
// handlers, keeping only what Ruby really needs (bridge-findings pitfalls 1-4).
//
// Threads: SaveBeforeRuby() and RestoreAfterRuby() run once, on the Ruby
// thread, around ruby_setup()/ruby_options(). The installed handlers run on
// whatever thread the kernel picks and are async-signal-safe (no locks, no
// allocation, no thread_local). The "weft-sigchld" guard thread started by
// RestoreAfterRuby() runs for the rest of the process.
//
// What it does:
//  - saves all sigactions before Ruby starts and restores every one of them
//    in full afterwards (handler, mask AND flags: pitfall 2, SA_RESETHAND),
//    except SIGVTALRM, which Ruby uses to wake its threads;
//  - SIGSEGV: faults on Ruby's threads (its main thread and the handler
//    pool, registered with AddRubyThread) go to Ruby's handler (machine stack
//    overflow -> SystemStackError; a crash prints Ruby's report with the
//    handler's backtrace); all others to Node's/V8's (WebAssembly
//    out-of-bounds traps -> RuntimeError) (pitfall 3), through the router in
//    common/fatal-signals.h that Python's crash reports share;
//  - SIGCHLD: calls Ruby's handler and whichever one it displaced (libuv's),
//    and a guard thread re-installs this chain every 50 ms if libuv replaced
//    it, then sends a synthetic SIGCHLD so a Ruby waitpid that missed the
//    real one wakes up (pitfall 4). Both libuv and Ruby only reap their own
//    children with WNOHANG, so the extra signal is harmless.
#pragma once
#include <pthread.h>

namespace weft {

class SignalChain {
 public:
  static void SaveBeforeRuby();
  static void RestoreAfterRuby(pthread_t rubyThread);
  // A Ruby thread of the handler pool starts or ends (any thread).
  static void AddRubyThread(pthread_t t);
  static void RemoveRubyThread(pthread_t t);
  // True once the chain is installed (tests read it through stats()).
  static bool installed();
  // How many times the guard found SIGCHLD replaced and re-installed the chain.
  static unsigned long reinstalls();
};

}  // namespace weft
