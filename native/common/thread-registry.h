// ThreadRegistry: a set of native threads that a signal handler can query,
// e.g. "does this fault come from one of Ruby's threads?".
//
// Threads: Add() and Remove() from any thread (a thread usually adds and
// removes itself); Contains() from anywhere, including a signal handler: it
// only reads atomics (no lock, no allocation, no thread_local). A fixed
// number of slots; a thread that finds none free is simply not registered.
#pragma once
#include <pthread.h>

#include <atomic>

namespace weft {

class ThreadRegistry {
 public:
  void Add(pthread_t t) {
    for (int i = 0; i < kSlots; i++) {
      unsigned long free = 0;
      if (slots_[i].compare_exchange_strong(free, static_cast<unsigned long>(t), std::memory_order_acq_rel)) {
        int top = used_.load(std::memory_order_relaxed);
        while (top < i + 1 && !used_.compare_exchange_weak(top, i + 1, std::memory_order_release)) {
        }
        return;
      }
    }
  }
  void Remove(pthread_t t) {
    int top = used_.load(std::memory_order_acquire);
    for (int i = 0; i < top; i++) {
      unsigned long mine = static_cast<unsigned long>(t);
      if (slots_[i].compare_exchange_strong(mine, 0, std::memory_order_acq_rel)) return;
    }
  }
  bool Contains(pthread_t t) const {
    int top = used_.load(std::memory_order_acquire);
    for (int i = 0; i < top; i++) {
      if (slots_[i].load(std::memory_order_acquire) == static_cast<unsigned long>(t)) return true;
    }
    return false;
  }

 private:
  static constexpr int kSlots = 4096;
  std::atomic<unsigned long> slots_[kSlots] = {};
  std::atomic<int> used_{0};
};

}  // namespace weft
