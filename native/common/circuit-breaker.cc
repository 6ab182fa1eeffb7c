#include "common/circuit-breaker.h"

namespace weft {

bool CircuitBreaker::ShouldAllow(int64_t nowNs, bool* probe) {
  *probe = false;
  int s = state_.load(std::memory_order_acquire);
  if (s == kClosed) return true;
  if (s == kOpen) {
    int64_t cooldown = int64_t(cooldownMs_.load(std::memory_order_relaxed)) * 1000000;
    if (nowNs - openedAtNs_.load(std::memory_order_relaxed) < cooldown) return false;
    int expected = kOpen;
    if (state_.compare_exchange_strong(expected, kHalfOpen)) {
      probeSuccesses_.store(0, std::memory_order_relaxed);
      probesInFlight_.store(0, std::memory_order_relaxed);
    }
  }
  // half-open: admit a bounded number of probes
  uint32_t inFlight = probesInFlight_.load(std::memory_order_relaxed);
  while (inFlight < halfOpenMaxProbes_.load(std::memory_order_relaxed)) {
    if (probesInFlight_.compare_exchange_weak(inFlight, inFlight + 1)) {
      *probe = true;
      return true;
    }
  }
  return false;
}

void CircuitBreaker::Open(int64_t nowNs) {
  openedAtNs_.store(nowNs, std::memory_order_relaxed);
  state_.store(kOpen, std::memory_order_release);
  opened_.fetch_add(1, std::memory_order_relaxed);
}

bool CircuitBreaker::Record(bool success, int64_t latencyNs, bool probe, int64_t nowNs) {
  uint32_t slow = slowCallMs_.load(std::memory_order_relaxed);
  if (success && slow > 0 && latencyNs > int64_t(slow) * 1000000) success = false;
  if (probe) probesInFlight_.fetch_sub(1, std::memory_order_relaxed);
  int s = state_.load(std::memory_order_acquire);
  if (s == kHalfOpen) {
    if (!probe) return !success;  // admitted before the breaker opened; says nothing about now
    if (!success) {
      Open(nowNs);
      return true;
    }
    if (probeSuccesses_.fetch_add(1) + 1 >= successThreshold_.load(std::memory_order_relaxed)) {
      failures_.store(0, std::memory_order_relaxed);
      state_.store(kClosed, std::memory_order_release);
    }
    return false;
  }
  if (s == kOpen) return !success;
  if (success) {
    failures_.store(0, std::memory_order_relaxed);
  } else if (failures_.fetch_add(1) + 1 >= failureThreshold_.load(std::memory_order_relaxed)) {
    Open(nowNs);
  }
  return !success;
}

void CircuitBreaker::ReleaseProbe() { probesInFlight_.fetch_sub(1, std::memory_order_relaxed); }

void CircuitBreaker::Configure(const BreakerConfig& c) {
  failureThreshold_.store(c.failureThreshold ? c.failureThreshold : 1);
  successThreshold_.store(c.successThreshold ? c.successThreshold : 1);
  cooldownMs_.store(c.cooldownMs);
  slowCallMs_.store(c.slowCallMs);
  halfOpenMaxProbes_.store(c.halfOpenMaxProbes ? c.halfOpenMaxProbes : 1);
}

void CircuitBreaker::Reset() {
  failures_.store(0);
  probeSuccesses_.store(0);
  probesInFlight_.store(0);
  state_.store(kClosed);
}

BreakerConfig CircuitBreaker::config() const {
  BreakerConfig c;
  c.failureThreshold = failureThreshold_.load();
  c.successThreshold = successThreshold_.load();
  c.cooldownMs = cooldownMs_.load();
  c.slowCallMs = slowCallMs_.load();
  c.halfOpenMaxProbes = halfOpenMaxProbes_.load();
  return c;
}

}  // namespace weft
