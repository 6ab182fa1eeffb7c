// BridgeHost: the N-API face of the bridge. One per process, bound to the
// first (main-thread) Node environment that loads the addon.
//
// Threads and locks:
//  - Every Napi method (Load, Dispatch, Configure, Stats, ...) runs on the JS
//    thread: it checks the breaker (atomics), copies the call into a Job and
//    pushes it on the runtime's bounded queue.
//  - Call() is Dispatch()'s fast path. For python and ruby it may wait for
//    the result on the JS thread, but only in a spin bounded by the runtime's
//    syncWaitUs (default 0 = off, at most 1 s), only when the runtime has no
//    other call in flight, and only for a handler whose recent runs fit in
//    that budget; when the budget runs out the call goes on asynchronously
//    exactly like Dispatch() (Job::handoff decides who delivers). Python and
//    Ruby handlers never call back into JS, so this wait cannot deadlock
//    (pitfall 19), and nothing but the interpreter's own thread ever touches
//    either interpreter (pitfalls 7 and 13). The wait yields the CPU between
//    checks (see AwaitShort). For typescript, the JS side of Call() runs the
//    handler inline on the JS thread (BeginTypescript, then CompleteTypescript,
//    or DeferTypescript first when it returns a Promise: no thread at all,
//    never a blocking hand-off) with the same breaker, counters, histograms
//    and timeout (checked on return while synchronous, by the watchdog once
//    it is a Promise).
//  - Cancel() runs on the JS thread: it claims a queued job (and takes it off
//    the queue) or a running one (and asks its runtime to interrupt the
//    handler, as a timeout does, with the watchdog's grace period after
//    it), then resolves the job's Promise at once with a `cancelled` error.
//  - The CompletionSink methods are called from runtime threads and the
//    watchdog (HandlerEvent: "stuck" counts as a failure of the runtime in
//    its breaker, recorded on the JS thread like every other outcome); they only post a Message to the thread-safe
//    function, under postMu_, and drop it once the environment is gone (alive_ == false), so no thread touches a
//    finalized TSFN.
//  - The TSFN is Unref'd while idle and Ref'd only while a load or dispatch
//    is outstanding (outstanding_, JS thread only), so an idle bridge never
//    keeps Node alive and a busy one never lets it exit with Promises pending
//    (pitfall 19).
//  - Runtimes, queues, the watchdog and this object are leaky singletons:
//    never destroyed, so exit() cannot hang on them (pitfall 16).
#pragma once
#include <napi.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "common/completion-sink.h"
#include "common/runtime-worker.h"
#include "common/timeout-watchdog.h"

namespace weft {

class BridgeHost : public CompletionSink {
 public:
  // Returns nullptr (and throws a JS error) if another environment owns the bridge.
  static BridgeHost* Create(Napi::Env env);

  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Dispatch(const Napi::CallbackInfo& info);
  Napi::Value Call(const Napi::CallbackInfo& info);
  Napi::Value BeginTypescript(const Napi::CallbackInfo& info);
  Napi::Value DeferTypescript(const Napi::CallbackInfo& info);
  Napi::Value Configure(const Napi::CallbackInfo& info);
  Napi::Value ResetBreaker(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value IsBroken(const Napi::CallbackInfo& info);
  Napi::Value SetTypescriptInvoker(const Napi::CallbackInfo& info);
  Napi::Value CompleteTypescript(const Napi::CallbackInfo& info);
  Napi::Value SetEventListener(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value ProcessInfo(const Napi::CallbackInfo& info);
  Napi::Value AsyncHandlers(const Napi::CallbackInfo& info);

  // CompletionSink (any thread)
  void Resolve(JobPtr job) override;
  void Loaded(RuntimeId rt, bool ok, std::vector<std::string> handlers, ForeignError error) override;
  void Broken(RuntimeId rt, std::string reason) override;
  void InvokeTypescript(JobPtr job) override;
  void HandlerEvent(RuntimeId rt, const char* event, std::string detail) override;

 private:
  struct Message {
    enum Type { kResolve, kLoaded, kBroken, kInvokeTs, kEvent } type;
    JobPtr job;
    RuntimeId rt = RuntimeId::Python;
    bool ok = false;
    std::vector<std::string> handlers;
    ForeignError error;
    std::string reason;  // kBroken: why; kEvent: the detail
    const char* event = "";
  };
  static void OnMessage(Napi::Env env, Napi::Function fn, BridgeHost* host, Message* msg);
  using Tsfn = Napi::TypedThreadSafeFunction<BridgeHost, Message, &BridgeHost::OnMessage>;

  explicit BridgeHost(Napi::Env env);
  void Post(Message* msg);
  void Hold(Napi::Env env);
  void Release(Napi::Env env);
  RuntimeWorker* RuntimeArg(const Napi::CallbackInfo& info, size_t i);
  // The checks every call passes before it may run (shut down, broken, not
  // loaded, breaker); false with *e filled when it may not. Counts it.
  bool Admit(RuntimeWorker* rt, int64_t now, bool* probe, ForeignError* e);
  Napi::Value Submit(const Napi::CallbackInfo& info, bool allowSync);
  bool SyncEligible(RuntimeWorker* rt, const std::string& handler);
  Napi::Value AwaitShort(Napi::Env env, const JobPtr& job, RuntimeWorker* rt);
  // Hands the job's Promise over to the thread-safe function path.
  napi_value Defer(Napi::Env env, const JobPtr& job);
  // JS thread, once per job: stats, breaker, the BridgeResult object.
  napi_value Outcome(Napi::Env env, const JobPtr& job);
  // JS thread: Outcome() and resolve the job's Promise.
  void Deliver(Napi::Env env, const JobPtr& job);
  void NoteRunTime(RuntimeWorker* rt, const std::string& handler, int64_t ns);
  Napi::Object ErrorObject(Napi::Env env, RuntimeId rt, const ForeignError& e);
  Napi::Value Answer(Napi::Env env, RuntimeId rt, const ForeignError& e, bool promise);
  void OnLoaded(Napi::Env env, Message* msg);
  void OnInvokeTs(Napi::Env env, Message* msg);
  void OnEvent(Napi::Env env, Message* msg);

  Tsfn tsfn_;
  std::mutex postMu_;
  bool alive_ = true;  // guarded by postMu_
  int outstanding_ = 0;
  bool shutdown_ = false;
  uint64_t nextJobId_ = 1;
  TimeoutWatchdog* watchdog_;
  RuntimeWorker* runtimes_[kRuntimeCount];
  bool attached_[kRuntimeCount] = {};  // a runtime library is in place (typescript: always). JS thread only.
  napi_deferred loadDeferred_[kRuntimeCount] = {};
  std::unordered_map<uint64_t, JobPtr> tsJobs_;  // typescript jobs handed to JS, JS thread only
  // Calls made with a key (call/dispatch's 5th argument) until they settle,
  // so cancel(runtime, key) can find them. JS thread only.
  std::unordered_map<uint64_t, JobPtr> keyed_[kRuntimeCount];
  // Recent run time per handler (an average that follows the last few runs),
  // which decides whether Call() may wait for it synchronously. JS thread only.
  std::unordered_map<std::string, int64_t> runNs_[kRuntimeCount];
  Napi::FunctionReference tsInvoker_;
  Napi::FunctionReference eventListener_;
};

}  // namespace weft
