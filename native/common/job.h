// Job: the plain "baton" one dispatch carries through the bridge.
//
// Threads: created on the JS thread by BridgeHost::Dispatch/Call, run on the
// runtime's own native thread (or, for the inline typescript target, on the
// JS thread itself), possibly timed out by the TimeoutWatchdog thread,
// cancelled by the JS thread (BridgeHost::Cancel), resolved back on the JS thread. Whoever moves `state` from Queued or
// Running to a terminal value with a compare-and-swap "claims" the job and is
// the only party that writes the outcome fields; everyone else leaves them
// alone. No napi_value is ever stored here; `deferred` is an opaque handle only
// the JS thread uses.
//
// Hand-off of the outcome to the JS thread (`handoff`): a claimer that finds
// kSyncWaiting swaps it to kDelivered and posts nothing, because the JS
// thread is waiting for exactly this job in a bounded spin (or is still
// inside an inline typescript handler) and reads the outcome itself. A JS
// thread that gives up swaps kSyncWaiting to kAsync; from then on the claimer
// posts the job through the thread-safe function as usual. The two
// compare-and-swaps decide the race: exactly one side delivers.
#pragma once
#include <node_api.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace weft {

// The bridged runtimes by index. The TypeScript runtime table (src/shared/runtimes.ts,
// `bridgeIndex`) must number them alike: the addon exports RuntimeName by index as
// `runtimes`, AddonBridge refuses an addon that disagrees, and a native test pins it.
enum class RuntimeId : int { Python = 0, Ruby = 1, Typescript = 2 };
constexpr int kRuntimeCount = 3;

inline const char* RuntimeName(RuntimeId id) {
  switch (id) {
    case RuntimeId::Python:
      return "python";
    case RuntimeId::Ruby:
      return "ruby";
    default:
      return "typescript";
  }
}

// Why a dispatch did not produce a value. Mirrors ForeignError.kind in
// src/bridge/types.ts.
enum class ErrorKind : int {
  None = 0,
  Raised,           // the handler raised/threw
  Timeout,          // past its timeoutMs (retryable)
  CircuitOpen,      // breaker rejected it without running (retryable)
  InvalidReturn,    // the handler returned something that is not JSON
  HandlerNotFound,  // no handler registered under that key
  RuntimeBroken,    // the runtime is marked broken (retryable elsewhere)
  QueueFull,        // the runtime's bounded queue is full (retryable)
  NotLoaded,        // dispatch before load() finished
  Cancelled,        // its task was cancelled: dropped from the queue or interrupted (permanent)
};

inline const char* ErrorKindName(ErrorKind k) {
  switch (k) {
    case ErrorKind::Raised:
      return "raised";
    case ErrorKind::Timeout:
      return "timeout";
    case ErrorKind::CircuitOpen:
      return "circuit_open";
    case ErrorKind::InvalidReturn:
      return "invalid_return";
    case ErrorKind::HandlerNotFound:
      return "handler_not_found";
    case ErrorKind::RuntimeBroken:
      return "runtime_broken";
    case ErrorKind::QueueFull:
      return "queue_full";
    case ErrorKind::NotLoaded:
      return "not_loaded";
    case ErrorKind::Cancelled:
      return "cancelled";
    default:
      return "none";
  }
}

// An error as the foreign language reported it: its identity survives the
// crossing (language comes from the runtime).
struct ForeignError {
  ErrorKind kind = ErrorKind::None;
  std::string errorClass;
  std::string message;
  std::vector<std::string> backtrace;
  bool permanent = false;
};

enum Handoff : int {
  kAsync = 0,        // the claimer posts the job through the thread-safe function
  kSyncWaiting = 1,  // the JS thread waits for this job synchronously (or runs it inline)
  kDelivered = 2,    // claimed while the JS thread waited: it reads the outcome, nothing is posted
};

// Whether a running job's handler itself has come back. The watchdog may
// declare a handler that ignored its interrupt past the grace period stuck;
// the thread that runs it learns so when (if ever) it returns. One
// compare-and-swap decides between the two, so each stuck handler is counted
// once and recovered once.
enum HandlerState : int {
  kHandlerOut = 0,    // started (or about to), not back yet
  kHandlerBack = 1,   // returned, or will never run
  kHandlerStuck = 2,  // declared stuck by the watchdog; its slot was replaced
};

enum JobState : int {
  kQueued = 0,
  kRunning = 1,
  kFinished = 2,   // claimed by the runtime thread with the handler's outcome
  kTimedOut = 3,   // claimed by the watchdog
  kAborted = 4,    // claimed by MarkBroken / shutdown while still queued
  kCancelled = 5,  // claimed by BridgeHost::Cancel (JS thread), queued or running
};

struct Job {
  uint64_t id = 0;
  RuntimeId runtime = RuntimeId::Python;
  std::string handler;
  std::string payload;  // released by the runtime once copied into the interpreter
  uint32_t timeoutMs = 0;
  bool probe = false;     // admitted by a half-open breaker
  bool shortRun = false;  // its handler's recent runs were short (JobQueue wakes fewer threads for it)
  uint64_t callKey = 0;   // the caller's key for cancel(); 0 = none. JS thread only

  int64_t dispatchNs = 0;  // JS thread entered Dispatch
  int64_t enqueuedNs = 0;  // pushed on the queue
  int64_t startNs = 0;     // runtime thread picked it up: its timeout counts from here
  int64_t endNs = 0;       // handler returned (or the job was claimed)
  int64_t deadlineNs = 0;  // startNs + timeoutMs, once the watchdog watches it

  std::atomic<int> state{kQueued};
  std::atomic<int> handoff{kAsync};
  std::atomic<int> handlerState{kHandlerOut};
  // Python only: an `async def` handler, run on the interpreter's event loop (not on a thread of the pool).
  bool async = false;

  napi_deferred deferred = nullptr;  // JS thread only
  bool settled = false;              // JS thread only: counted and handed to JS once

  // Outcome: written only by the claimer, read on the JS thread afterwards.
  bool ok = false;
  std::string resultJson;
  ForeignError error;

  bool Claim(int from, int to) { return state.compare_exchange_strong(from, to, std::memory_order_acq_rel); }

  // The handler came back (or will never run). True when the watchdog had
  // declared it stuck meanwhile: its thread was replaced and should retire.
  bool MarkReturned() { return handlerState.exchange(kHandlerBack, std::memory_order_acq_rel) == kHandlerStuck; }
  // Watchdog, at the end of the grace period: true when the handler is still out.
  bool MarkStuck() {
    int out = kHandlerOut;
    return handlerState.compare_exchange_strong(out, kHandlerStuck, std::memory_order_acq_rel);
  }
};

using JobPtr = std::shared_ptr<Job>;

}  // namespace weft
