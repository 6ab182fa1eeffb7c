// NativeThread: starts a detached-by-default pthread with an explicit stack size.
//
// Threads: Start() from any thread. The started thread runs `fn` once. The
// handle is kept so a natural-exit cleanup hook could join it, but weft never
// joins interpreter threads: they may be inside a handler that cannot be
// interrupted, and exit() must never wait on them (bridge-findings pitfall 16).
#pragma once
#include <pthread.h>

#include <cstddef>
#include <functional>
#include <string>

namespace weft {

class NativeThread {
 public:
  static constexpr size_t kInterpreterStack = 8u << 20;  // 8 MiB, as the issue asks

  // Returns an empty string on success, or why the thread could not start.
  std::string Start(const char* name, size_t stackBytes, std::function<void()> fn);
  pthread_t handle() const { return thread_; }
  bool started() const { return started_; }

 private:
  static void* Trampoline(void* arg);
  pthread_t thread_{};
  bool started_ = false;
};

}  // namespace weft
