// RuntimeStats: the counters stats() reports for one runtime.
//
// Threads: every field is an atomic written from whichever thread sees the
// event (JS thread, runtime thread, watchdog) and read lock-free by stats().
#pragma once
#include <atomic>
#include <cstdint>

#include "common/latency-histogram.h"

namespace weft {

struct RuntimeStats {
  std::atomic<uint64_t> dispatched{0};         // dispatch() calls for this runtime
  std::atomic<uint64_t> completed{0};          // resolved ok
  std::atomic<uint64_t> failed{0};             // resolved with a handler/runtime error (not timeout/breaker/queue)
  std::atomic<uint64_t> timedOut{0};           // resolved as timeout
  std::atomic<uint64_t> rejectedByBreaker{0};  // circuit_open without running
  std::atomic<uint64_t> rejectedQueueFull{0};  // queue_full without running
  std::atomic<int64_t> inFlight{0};            // accepted and not yet resolved
  std::atomic<uint64_t> lateResults{0};        // handler returned after its job timed out
  std::atomic<uint64_t> syncReturns{0};        // call() answered synchronously (no thread-safe function round trip)
  std::atomic<uint64_t> syncWaitMisses{0};     // call() waited its sync budget, then went on asynchronously
  std::atomic<int64_t> running{0};             // handlers running now (stuck ones included)
  std::atomic<int64_t> stuck{0};               // handlers declared stuck that have not returned
  std::atomic<uint64_t> stuckTotal{0};         // handlers ever declared stuck
  std::atomic<uint32_t> threads{0};            // threads that run handlers (python, ruby), stuck ones excluded
  // Python's event loop (async def handlers): how often a handler blocked it
  // past loopBlockedMs, and the longest block seen.
  std::atomic<uint64_t> loopBlocked{0};
  std::atomic<uint64_t> loopMaxLagUs{0};

  LatencyHistogram serialise;   // JS thread: copying the call's strings out of V8 into the job
  LatencyHistogram queueWait;   // queued -> picked up by the runtime thread
  LatencyHistogram run;         // handler run, including the runtime's own JSON parse/serialise
  LatencyHistogram returnTime;  // handler returned -> Promise resolved on the JS thread
};

}  // namespace weft
