// CompletionSink: how runtime threads and the watchdog hand results to the JS
// thread. Implemented by BridgeHost with one thread-safe function.
//
// Threads: every method may be called from any non-JS thread and must not
// block for long (it only queues a message). Calls after the Node environment
// has been torn down are dropped.
#pragma once
#include <string>
#include <vector>

#include "common/job.h"

namespace weft {

class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  // A claimed job's outcome is ready: resolve its Promise on the JS thread.
  virtual void Resolve(JobPtr job) = 0;
  // A runtime finished (or failed) loading its interpreter and handlers.
  virtual void Loaded(RuntimeId rt, bool ok, std::vector<std::string> handlers, ForeignError error) = 0;
  // A runtime was marked broken; the worker host should stop and restart.
  virtual void Broken(RuntimeId rt, std::string reason) = 0;
  // The typescript target: run this job's handler in JS on the JS thread.
  virtual void InvokeTypescript(JobPtr job) = 0;
  // Something the worker should hear about a handler: "stuck" (it ignored
  // its interrupt; counted as a failure of the runtime), "recovered" (a
  // stuck one returned), "loop_blocked" (an async handler blocked Python's
  // event loop). `detail` is a sentence for the log.
  virtual void HandlerEvent(RuntimeId rt, const char* event, std::string detail) = 0;
};

}  // namespace weft
