// Monotonic time in nanoseconds, readable from any thread without locks.
#pragma once
#include <cstdint>
#include <ctime>

namespace weft {

inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

}  // namespace weft
