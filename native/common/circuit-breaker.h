// CircuitBreaker: closed / open / half-open, per runtime.
//
// Threads: ShouldAllow() runs on the JS thread for every dispatch and is a
// plain read of atomics, never a lock or a wait. Record() runs on the JS
// thread when a dispatch resolves; Configure() on the JS thread. All state is
// std::atomic so stats() can read it from anywhere.
//
// It protects the runtime, not against the handler: the caller (BridgeHost)
// records as a failure only what says the runtime itself is unwell (a
// timeout, a broken interpreter, a bridge error) and as a success every call
// the runtime answered in time, whether the handler returned a value, raised,
// returned something that is not JSON or named a missing handler. Load
// (queue_full) is not recorded at all.
//
// Semantics:
//  - closed: every call is allowed. A failure (or an answer slower than
//    slowCallMs) counts towards failureThreshold consecutive failures; any
//    other answer resets the count. Reaching the threshold opens it.
//  - open: calls are rejected until cooldownMs have passed since opening;
//    then the first ShouldAllow() moves it to half-open and admits a probe.
//  - half-open: at most halfOpenMaxProbes calls are in flight at once. A
//    failing probe re-opens it; successThreshold successful probes close it.
#pragma once
#include <atomic>
#include <cstdint>

namespace weft {

struct BreakerConfig {
  uint32_t failureThreshold = 5;
  uint32_t successThreshold = 2;
  uint32_t cooldownMs = 5000;
  uint32_t slowCallMs = 0;  // 0 = latency never counts as a failure
  uint32_t halfOpenMaxProbes = 1;
};

class CircuitBreaker {
 public:
  enum State : int { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

  // Returns whether a call may run now; sets *probe when it is a half-open probe.
  bool ShouldAllow(int64_t nowNs, bool* probe);
  // The outcome of a call that ShouldAllow() admitted. Returns whether it
  // counted as a failure (a failure, or an answer slower than slowCallMs).
  bool Record(bool success, int64_t latencyNs, bool probe, int64_t nowNs);
  // A probe admitted by ShouldAllow() that never ran (refused by a full queue).
  void ReleaseProbe();
  void Configure(const BreakerConfig& c);
  void Reset();

  State state() const { return State(state_.load(std::memory_order_acquire)); }
  uint32_t consecutiveFailures() const { return failures_.load(std::memory_order_relaxed); }
  uint64_t timesOpened() const { return opened_.load(std::memory_order_relaxed); }
  BreakerConfig config() const;

 private:
  void Open(int64_t nowNs);

  std::atomic<int> state_{kClosed};
  std::atomic<uint32_t> failures_{0};
  std::atomic<uint32_t> probeSuccesses_{0};
  std::atomic<uint32_t> probesInFlight_{0};
  std::atomic<int64_t> openedAtNs_{0};
  std::atomic<uint64_t> opened_{0};

  std::atomic<uint32_t> failureThreshold_{5};
  std::atomic<uint32_t> successThreshold_{2};
  std::atomic<uint32_t> cooldownMs_{5000};
  std::atomic<uint32_t> slowCallMs_{0};
  std::atomic<uint32_t> halfOpenMaxProbes_{1};
};

}  // namespace weft
