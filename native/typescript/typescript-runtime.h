// TypescriptRuntime: the "typescript through the bridge" target. Same path as
// python/ruby (breaker check -> queue -> native thread), but the native
// thread hands each job back to the JS thread through the thread-safe
// function, where the registered JS handler runs; its result comes back
// through BridgeHost::CompleteTypescript. It isolates the bridge's own cost.
//
// Threads: ThreadMain runs on "weft-typescript"; it never runs JS and never
// waits for a handler, so async handlers overlap freely. A JS handler cannot
// be interrupted: on timeout the call resolves at once and, if the handler
// has still not settled after the grace period, it is reported stuck (and
// the runtime marked broken once maxStuck are stuck at once).
#pragma once
#include "common/runtime-worker.h"

namespace weft {

class TypescriptRuntime : public RuntimeWorker {
 public:
  TypescriptRuntime(CompletionSink* sink, TimeoutWatchdog* watchdog)
      : RuntimeWorker(RuntimeId::Typescript, sink, watchdog) {}

  // JS thread: the handler of a job handed over by ThreadMain settled.
  void Complete(const JobPtr& job, bool ok, std::string json, ForeignError error, bool* resolvedNow);
  // JS thread: a begun job whose handler will never run (timed out while it crossed over).
  void NeverRan(const JobPtr& job) { HandlerReturned(job); }

 protected:
  void ThreadMain() override;
};

}  // namespace weft
