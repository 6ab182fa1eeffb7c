// The one NODE_API_MODULE of weft: the core addon weft_bridge.node. It
// includes neither Python.h nor ruby.h (pitfall 18), and links neither
// interpreter: those live in weft_python.node and weft_ruby.node, attached on
// demand (common/runtime-plugin.h). Loading is refused in a second Node environment
// (worker_threads) with a clear error (pitfall 17).
#include <napi.h>

#include "bridge-host.h"

namespace {

using weft::BridgeHost;

template <Napi::Value (BridgeHost::*M)(const Napi::CallbackInfo&)>
void Export(Napi::Env env, Napi::Object exports, BridgeHost* host, const char* name) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [](const Napi::CallbackInfo& info) -> Napi::Value {
                          return (static_cast<BridgeHost*>(info.Data())->*M)(info);
                        },
                        name, host));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  BridgeHost* host = BridgeHost::Create(env);
  if (!host) return exports;  // a JS exception is pending
  Export<&BridgeHost::Attach>(env, exports, host, "attach");
  Export<&BridgeHost::Load>(env, exports, host, "load");
  Export<&BridgeHost::Dispatch>(env, exports, host, "dispatch");
  Export<&BridgeHost::Call>(env, exports, host, "call");
  Export<&BridgeHost::BeginTypescript>(env, exports, host, "beginTypescript");
  Export<&BridgeHost::DeferTypescript>(env, exports, host, "deferTypescript");
  Export<&BridgeHost::Configure>(env, exports, host, "configure");
  Export<&BridgeHost::ResetBreaker>(env, exports, host, "resetBreaker");
  Export<&BridgeHost::Stats>(env, exports, host, "stats");
  Export<&BridgeHost::IsBroken>(env, exports, host, "isBroken");
  Export<&BridgeHost::SetTypescriptInvoker>(env, exports, host, "setTypescriptInvoker");
  Export<&BridgeHost::CompleteTypescript>(env, exports, host, "completeTypescript");
  Export<&BridgeHost::SetEventListener>(env, exports, host, "setEventListener");
  Export<&BridgeHost::Shutdown>(env, exports, host, "shutdown");
  Export<&BridgeHost::Cancel>(env, exports, host, "cancel");
  Export<&BridgeHost::ProcessInfo>(env, exports, host, "processInfo");
  Export<&BridgeHost::AsyncHandlers>(env, exports, host, "asyncHandlers");
  Napi::Array bounds = Napi::Array::New(env, weft::LatencyHistogram::kBuckets);
  for (int i = 0; i < weft::LatencyHistogram::kBuckets; i++)
    bounds.Set(uint32_t(i), weft::LatencyHistogram::UpperBoundUs(i));
  exports.Set("histogramUpperBoundsUs", bounds);
  // The runtimes by index, so the TypeScript runtime table (src/shared/runtimes.ts)
  // can check it numbers them alike instead of mirroring RuntimeId by hand.
  Napi::Array runtimes = Napi::Array::New(env, weft::kRuntimeCount);
  for (int i = 0; i < weft::kRuntimeCount; i++) runtimes.Set(uint32_t(i), weft::RuntimeName(weft::RuntimeId(i)));
  exports.Set("runtimes", runtimes);
  return exports;
}

}  // namespace

NODE_API_MODULE(weft_bridge, Init)
