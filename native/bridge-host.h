// BridgeHost: the N-API face of the bridge. One per process, bound to the
// first (main-thread) Node environment that loads the addon.
//
// Threads and locks:
//  - Every Napi method (Load, Dispatch, Configure, Stats, ...) runs on the JS
//    thread and never waits on Python or Ruby: it checks the breaker (atomics),
//    copies the call into a Job and pushes it on the runtime's bounded queue.
//  - The CompletionSink methods are called from runtime threads and the
//    watchdog; they only post a Message to the thread-safe function, under
//    postMu_, and drop it once the environment is gone (alive_ == false), so
//    no thread touches a finalized TSFN.
//  - The TSFN is Unref'd while idle and Ref'd only while a load or dispatch
//    is outstanding (outstanding_, JS thread only), so an idle bridge never
//    keeps Node alive and a busy one never lets it exit with Promises pending
//    (pitfall 19).
//  - Runtimes, queues, the watchdog and this object are leaky singletons:
//    never destroyed, so exit() cannot hang on them (pitfall 16).
#pragma once
#include <napi.h>

#include <mutex>
#include <unordered_map>

#include "common/completion-sink.h"
#include "common/runtime-worker.h"
#include "common/timeout-watchdog.h"

namespace weft {

class BridgeHost : public CompletionSink {
 public:
  // Returns nullptr (and throws a JS error) if another environment owns the bridge.
  static BridgeHost* Create(Napi::Env env);

  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Dispatch(const Napi::CallbackInfo& info);
  Napi::Value Configure(const Napi::CallbackInfo& info);
  Napi::Value ResetBreaker(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value IsBroken(const Napi::CallbackInfo& info);
  Napi::Value SetTypescriptInvoker(const Napi::CallbackInfo& info);
  Napi::Value CompleteTypescript(const Napi::CallbackInfo& info);
  Napi::Value SetEventListener(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value ProcessInfo(const Napi::CallbackInfo& info);

  // CompletionSink (any thread)
  void Resolve(JobPtr job) override;
  void Loaded(RuntimeId rt, bool ok, std::vector<std::string> handlers, ForeignError error) override;
  void Broken(RuntimeId rt, std::string reason) override;
  void InvokeTypescript(JobPtr job) override;

 private:
  struct Message {
    enum Type { kResolve, kLoaded, kBroken, kInvokeTs } type;
    JobPtr job;
    RuntimeId rt = RuntimeId::Python;
    bool ok = false;
    std::vector<std::string> handlers;
    ForeignError error;
    std::string reason;
  };
  static void OnMessage(Napi::Env env, Napi::Function fn, BridgeHost* host, Message* msg);
  using Tsfn = Napi::TypedThreadSafeFunction<BridgeHost, Message, &BridgeHost::OnMessage>;

  explicit BridgeHost(Napi::Env env);
  void Post(Message* msg);
  void Hold(Napi::Env env);
  void Release(Napi::Env env);
  RuntimeWorker* RuntimeArg(const Napi::CallbackInfo& info, size_t i);
  void Settle(Napi::Env env, const JobPtr& job);  // JS thread: stats, breaker, resolve the Promise
  Napi::Object ErrorObject(Napi::Env env, RuntimeId rt, const ForeignError& e);
  Napi::Value Immediate(Napi::Env env, RuntimeId rt, ErrorKind kind, const std::string& cls, const std::string& msg);
  void OnLoaded(Napi::Env env, Message* msg);
  void OnInvokeTs(Napi::Env env, Message* msg);

  Tsfn tsfn_;
  std::mutex postMu_;
  bool alive_ = true;  // guarded by postMu_
  int outstanding_ = 0;
  bool shutdown_ = false;
  uint64_t nextJobId_ = 1;
  TimeoutWatchdog* watchdog_;
  RuntimeWorker* runtimes_[kRuntimeCount];
  napi_deferred loadDeferred_[kRuntimeCount] = {};
  std::unordered_map<uint64_t, JobPtr> tsJobs_;  // typescript jobs handed to JS, JS thread only
  Napi::FunctionReference tsInvoker_;
  Napi::FunctionReference eventListener_;
};

}  // namespace weft
