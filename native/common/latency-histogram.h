// LatencyHistogram: fixed log2-scale buckets of atomics.
//
// Threads: Record() from any thread, Snapshot() from any thread; no locks.
// A snapshot taken while records happen may be off by the in-progress ones,
// which is fine for metrics. Bucket i counts values in [2^(i-1), 2^i) µs
// (bucket 0: < 1 µs); the last bucket is open-ended.
#pragma once
#include <atomic>
#include <cstdint>

namespace weft {

class LatencyHistogram {
 public:
  static constexpr int kBuckets = 32;  // up to 2^30 µs ≈ 18 minutes

  void Record(int64_t ns) {
    if (ns < 0) ns = 0;
    uint64_t us = uint64_t(ns) / 1000;
    int b = us == 0 ? 0 : 64 - __builtin_clzll(us);
    if (b >= kBuckets) b = kBuckets - 1;
    buckets_[b].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sumNs_.fetch_add(uint64_t(ns), std::memory_order_relaxed);
  }

  // Upper bound in µs of bucket b (exclusive); the last is +inf.
  static double UpperBoundUs(int b) { return double(uint64_t(1) << b); }

  uint64_t Bucket(int b) const { return buckets_[b].load(std::memory_order_relaxed); }
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t SumNs() const { return sumNs_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> buckets_[kBuckets] = {};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sumNs_{0};
};

}  // namespace weft
