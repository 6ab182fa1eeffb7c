// FatalSignals: routes a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE) to the
// handler of whoever owns the thread it happened on.
//
//  - Ruby's threads (its main thread and the handler pool) -> Ruby's handler:
//    a machine stack overflow becomes SystemStackError, a crash prints Ruby's
//    report with the handler's Ruby backtrace (pitfall 3).
//  - Python's threads (the interpreter's main thread, the handler pool, the
//    interrupt thread) -> faulthandler's, which prints every Python thread's
//    traceback (so the crash names the handler) and then re-raises; the
//    re-raised signal goes on to Node's handler, so the process still dies of
//    the signal its supervisor expects.
//  - any other thread -> Node's/V8's handler (WebAssembly out-of-bounds traps
//    become RuntimeError).
//
// Threads: SaveNode(), SetRuby(), SetPython() and Install() run on the
// interpreter threads during their start-up, one runtime at a time or
// concurrently (a mutex orders them). Route() runs in the signal handler on
// whatever thread faulted and is async-signal-safe (atomics and plain reads
// only). The registries are read by Route() and written by threads as they
// start and end (ThreadRegistry).
#pragma once
#include <signal.h>

#include "common/thread-registry.h"

namespace weft {

class FatalSignals {
 public:
  // Records the handlers in place before any interpreter changed them
  // (Node's); only the first call records anything.
  static void SaveNode();
  // An interpreter's own handler for faults on its threads.
  static void SetRuby(int sig, const struct sigaction& handler);
  static void SetPython(int sig, const struct sigaction& handler);
  // (Re)installs the router for every routed signal.
  static void Install();
  static ThreadRegistry& RubyThreads();
  static ThreadRegistry& PythonThreads();
  // The signals routed: SIGSEGV, SIGBUS, SIGILL, SIGFPE.
  static constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
};

}  // namespace weft
