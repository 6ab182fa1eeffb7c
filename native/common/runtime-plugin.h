// The contract between the core addon (weft_bridge.node: the bridge host, the
// shared machinery and the typescript target) and a runtime library
// (weft_python.node, weft_ruby.node), which holds one interpreter's runtime
// and is the only file linked against that interpreter's library.
//
// The core dlopen()s a runtime library when JS attaches it (attach(runtime,
// path)), which a worker does only for the runtime it serves: a native or
// TypeScript worker maps neither libpython nor libruby, and a Python worker
// never needs libruby. The runtime library names the core in its DT_NEEDED
// entry by soname, so the dynamic loader binds it to the core already loaded
// in the process (Node loads addons RTLD_LOCAL, which a plain dlopen of the
// runtime could not see), one copy of every shared symbol.
//
// Threads: weft_create_runtime is called once per runtime, on the JS thread.
#pragma once
#include "common/runtime-worker.h"

// Bump when RuntimeWorker, Job, CompletionSink or TimeoutWatchdog change shape:
// a runtime library built from other sources than the core is refused.
#define WEFT_RUNTIME_PLUGIN_ABI 2

extern "C" {
// Returns a new runtime (never destroyed), or nullptr when `abi` or the size
// of RuntimeWorker the core was built with differ from the library's.
typedef weft::RuntimeWorker* (*WeftCreateRuntime)(int abi, unsigned long workerSize, weft::CompletionSink* sink,
                                                  weft::TimeoutWatchdog* watchdog);
}

// Defines weft_create_runtime for one runtime class, in that runtime's library.
#define WEFT_RUNTIME_PLUGIN(RuntimeClass)                                                               \
  extern "C" __attribute__((visibility("default"))) weft::RuntimeWorker* weft_create_runtime(           \
      int abi, unsigned long workerSize, weft::CompletionSink* sink, weft::TimeoutWatchdog* watchdog) { \
    if (abi != WEFT_RUNTIME_PLUGIN_ABI || workerSize != sizeof(weft::RuntimeWorker)) return nullptr;    \
    return new RuntimeClass(sink, watchdog);                                                            \
  }
