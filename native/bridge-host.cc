#include "bridge-host.h"

#include <sched.h>

#include <atomic>
#include <cstdlib>

#include "common/clock.h"
#include "python/python-runtime.h"
#include "ruby/ruby-runtime.h"
#include "ruby/signal-chain.h"
#include "typescript/typescript-runtime.h"

namespace weft {

namespace {
// Long enough for a short handler's cold round trip on a loaded 2-vCPU VM
// (wake-up + run), short enough that a miss costs little (bench:bridge).
constexpr uint32_t kDefaultSyncWaitUs = 300;
// A handler whose recent runs took at most this long is "short": the queue
// spreads bursts of its jobs over two threads, not the whole pool (JobQueue).
constexpr int64_t kShortRunNs = 100 * 1000;

std::atomic<bool> g_claimed{false};
BridgeHost* g_host = nullptr;

uint32_t U32(const Napi::Object& o, const char* key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) return dflt;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0)) return dflt;
  return d > 4294967295.0 ? 4294967295u : uint32_t(d);
}
// The optional call key at info[i] (for cancel): a whole number from 1 to
// 2^53-1, else 0 (none).
uint64_t CallKey(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) return 0;
  double k = info[i].As<Napi::Number>().DoubleValue();
  return k >= 1 && k <= 9007199254740991.0 ? uint64_t(k) : 0;
}
}  // namespace

BridgeHost* BridgeHost::Create(Napi::Env env) {
  if (g_claimed.exchange(true)) {
    Napi::Error::New(env,
                     "weft_bridge is already loaded by another Node environment in this process. The native bridge "
                     "owns process-wide Python and Ruby interpreters, which can be initialised only once per "
                     "process, so it can be loaded only from one environment (the main thread), never from a "
                     "worker_thread. Load it on the main thread and dispatch to it from there.")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  g_host = new BridgeHost(env);  // leaky singleton (pitfall 16)
  return g_host;
}

BridgeHost::BridgeHost(Napi::Env env) {
  tsfn_ = Tsfn::New(env, "weft_bridge", 0, 1, this);
  tsfn_.Unref(env);
  watchdog_ = new TimeoutWatchdog(this);
  watchdog_->Start();
  runtimes_[int(RuntimeId::Python)] = new PythonRuntime(this, watchdog_);
  runtimes_[int(RuntimeId::Ruby)] = new RubyRuntime(this, watchdog_);
  runtimes_[int(RuntimeId::Typescript)] = new TypescriptRuntime(this, watchdog_);
  // Call()'s default sync budget for the interpreter threads (typescript runs inline).
  for (RuntimeId id : {RuntimeId::Python, RuntimeId::Ruby}) runtimes_[int(id)]->syncWaitUs.store(kDefaultSyncWaitUs);
  // Registered after the TSFN so it runs before the TSFN's own teardown:
  // from then on threads drop their messages instead of using it.
  env.AddCleanupHook([this]() {
    std::lock_guard<std::mutex> lock(postMu_);
    alive_ = false;
  });
}

// ---------------------------------------------------------------- posting

void BridgeHost::Post(Message* msg) {
  std::lock_guard<std::mutex> lock(postMu_);
  if (!alive_ || tsfn_.NonBlockingCall(msg) != napi_ok) delete msg;
}

void BridgeHost::Resolve(JobPtr job) {
  // The JS thread waits for this very job (Call's bounded spin, or an inline
  // typescript handler still running): it reads the outcome itself.
  int expected = kSyncWaiting;
  if (job->handoff.compare_exchange_strong(expected, kDelivered, std::memory_order_acq_rel)) return;
  Message* m = new Message{Message::kResolve, std::move(job)};
  Post(m);
}

void BridgeHost::Loaded(RuntimeId rt, bool ok, std::vector<std::string> handlers, ForeignError error) {
  Message* m = new Message{Message::kLoaded, nullptr, rt, ok, std::move(handlers), std::move(error)};
  Post(m);
}

void BridgeHost::Broken(RuntimeId rt, std::string reason) {
  Message* m = new Message{Message::kBroken, nullptr, rt};
  m->reason = std::move(reason);
  Post(m);
}

void BridgeHost::InvokeTypescript(JobPtr job) {
  Message* m = new Message{Message::kInvokeTs, std::move(job), RuntimeId::Typescript};
  Post(m);
}

void BridgeHost::HandlerEvent(RuntimeId rt, const char* event, std::string detail) {
  Message* m = new Message{Message::kEvent, nullptr, rt};
  m->event = event;
  m->reason = std::move(detail);
  Post(m);
}

void BridgeHost::Hold(Napi::Env env) {
  if (outstanding_++ == 0) tsfn_.Ref(env);
}

void BridgeHost::Release(Napi::Env env) {
  if (--outstanding_ == 0) tsfn_.Unref(env);
}

// ------------------------------------------------------------- JS thread side

void BridgeHost::OnMessage(Napi::Env env, Napi::Function, BridgeHost* host, Message* msg) {
  if (env == nullptr) {  // environment torn down
    delete msg;
    return;
  }
  try {
    switch (msg->type) {
      case Message::kResolve:
        if (!msg->job->settled) host->Deliver(env, msg->job);
        break;
      case Message::kLoaded:
        host->OnLoaded(env, msg);
        break;
      case Message::kBroken:
        if (!host->eventListener_.IsEmpty()) {
          host->eventListener_.Call({Napi::String::New(env, "broken"), Napi::String::New(env, RuntimeName(msg->rt)),
                                     Napi::String::New(env, msg->reason)});
        }
        break;
      case Message::kInvokeTs:
        host->OnInvokeTs(env, msg);
        break;
      case Message::kEvent:
        host->OnEvent(env, msg);
        break;
    }
  } catch (const Napi::Error& e) {
    // A JS listener threw; surface it like any uncaught exception would be,
    // without unwinding through libuv.
    e.ThrowAsJavaScriptException();
  }
  delete msg;
}

Napi::Object BridgeHost::ErrorObject(Napi::Env env, RuntimeId rt, const ForeignError& e) {
  Napi::Object err = Napi::Object::New(env);
  err.Set("language", RuntimeName(rt));
  err.Set("class", e.errorClass);
  err.Set("message", e.message);
  Napi::Array bt = Napi::Array::New(env, e.backtrace.size());
  for (size_t i = 0; i < e.backtrace.size(); i++) bt.Set(uint32_t(i), e.backtrace[i]);
  err.Set("backtrace", bt);
  err.Set("permanent", e.permanent);
  err.Set("kind", ErrorKindName(e.kind));
  if (e.kind == ErrorKind::CircuitOpen) {
    const RuntimeWorker::Failure& f = runtimes_[int(rt)]->lastFailure;
    if (f.kind != ErrorKind::None) {
      Napi::Object last = Napi::Object::New(env);
      last.Set("class", f.errorClass);
      last.Set("message", f.message);
      last.Set("kind", ErrorKindName(f.kind));
      err.Set("lastFailure", last);
    }
  }
  Napi::Object res = Napi::Object::New(env);
  res.Set("ok", false);
  res.Set("error", err);
  return res;
}

napi_value BridgeHost::Outcome(Napi::Env env, const JobPtr& job) {
  job->settled = true;
  if (job->callKey) {
    auto& keyed = keyed_[int(job->runtime)];
    auto it = keyed.find(job->callKey);
    if (it != keyed.end() && it->second == job) keyed.erase(it);  // a caller may reuse a settled call's key
  }
  RuntimeWorker* rt = runtimes_[int(job->runtime)];
  RuntimeStats& s = rt->stats;
  int64_t now = NowNs();
  if (job->startNs) s.queueWait.Record(job->startNs - job->enqueuedNs);
  bool ran = job->startNs && job->state.load() == kFinished;
  if (ran) {
    s.run.Record(job->endNs - job->startNs);
    s.returnTime.Record(now - job->endNs);
    NoteRunTime(rt, job->handler, job->endNs - job->startNs);
  } else if (job->error.kind == ErrorKind::Timeout) {
    NoteRunTime(rt, job->handler, int64_t(job->timeoutMs) * 1000000);
  }
  napi_value value;
  ErrorKind kind = job->ok ? ErrorKind::None : job->error.kind;
  if (job->ok) {
    s.completed.fetch_add(1, std::memory_order_relaxed);
    Napi::Object res = Napi::Object::New(env);
    res.Set("ok", true);
    res.Set("json", Napi::String::New(env, job->resultJson));
    std::string().swap(job->resultJson);
    value = res;
  } else {
    if (kind == ErrorKind::Timeout)
      s.timedOut.fetch_add(1, std::memory_order_relaxed);
    else
      s.failed.fetch_add(1, std::memory_order_relaxed);
    value = ErrorObject(env, job->runtime, job->error);
  }
  if (kind == ErrorKind::Cancelled) {
    // Stopped by its caller: says nothing about the runtime's health, and a
    // long call cancelled must not count as a slow one.
    if (job->probe) rt->breaker.ReleaseProbe();
    s.inFlight.fetch_sub(1, std::memory_order_relaxed);
    return value;
  }
  // The breaker protects the runtime, not against the handler: a handler
  // that raised, returned something that is not JSON or was not found was
  // still answered, promptly, by a healthy runtime.
  bool answered = kind == ErrorKind::None || kind == ErrorKind::Raised || kind == ErrorKind::InvalidReturn ||
                  kind == ErrorKind::HandlerNotFound;
  int64_t latency = ran ? job->endNs - job->startNs : now - job->dispatchNs;
  bool failed = rt->breaker.Record(answered, latency, job->probe, now);
  if (failed) {
    RuntimeWorker::Failure& f = rt->lastFailure;
    if (answered) {
      f.errorClass = "SlowCall";
      f.message = std::string("handler \"") + job->handler + "\" took " + std::to_string(latency / 1000000) +
                  " ms, more than the breaker's slowCallMs (" + std::to_string(rt->breaker.config().slowCallMs) +
                  " ms)";
      f.kind = ErrorKind::Timeout;
    } else {
      f.errorClass = job->error.errorClass;
      f.message = job->error.message;
      f.kind = kind;
    }
  }
  s.inFlight.fetch_sub(1, std::memory_order_relaxed);
  return value;
}

void BridgeHost::Deliver(Napi::Env env, const JobPtr& job) {
  napi_value value = Outcome(env, job);
  napi_deferred d = job->deferred;
  job->deferred = nullptr;
  if (!d) return;
  Release(env);
  napi_resolve_deferred(env, d, value);
}

napi_value BridgeHost::Defer(Napi::Env env, const JobPtr& job) {
  napi_value promise;
  napi_create_promise(env, &job->deferred, &promise);
  Hold(env);
  return promise;
}

void BridgeHost::NoteRunTime(RuntimeWorker* rt, const std::string& handler, int64_t ns) {
  auto& m = runNs_[int(rt->id())];
  auto it = m.find(handler);
  if (it != m.end()) {
    it->second = (it->second * 3 + ns) / 4;  // follows the last few runs
  } else if (m.size() < 4096) {              // handler keys are few; do not grow on garbage keys
    m.emplace(handler, ns);
  }
}

void BridgeHost::OnLoaded(Napi::Env env, Message* msg) {
  int i = int(msg->rt);
  napi_deferred d = loadDeferred_[i];
  loadDeferred_[i] = nullptr;
  Release(env);
  if (!d) return;
  if (msg->ok) {
    Napi::Array keys = Napi::Array::New(env, msg->handlers.size());
    for (size_t k = 0; k < msg->handlers.size(); k++) keys.Set(uint32_t(k), msg->handlers[k]);
    napi_resolve_deferred(env, d, keys);
  } else {
    std::string text = std::string("could not load the ") + RuntimeName(msg->rt) +
                       " handlers: " + msg->error.errorClass + ": " + msg->error.message;
    Napi::Error e = Napi::Error::New(env, text);
    e.Set("language", RuntimeName(msg->rt));
    e.Set("errorClass", msg->error.errorClass);
    e.Set("errorMessage", msg->error.message);
    Napi::Array bt = Napi::Array::New(env, msg->error.backtrace.size());
    for (size_t k = 0; k < msg->error.backtrace.size(); k++) bt.Set(uint32_t(k), msg->error.backtrace[k]);
    e.Set("backtrace", bt);
    napi_reject_deferred(env, d, e.Value());
  }
}

void BridgeHost::OnEvent(Napi::Env env, Message* msg) {
  RuntimeWorker* rt = runtimes_[int(msg->rt)];
  if (std::string(msg->event) == "stuck") {
    // A handler that will not stop is a failure of the runtime itself.
    rt->breaker.Record(false, 0, false, NowNs());
    rt->lastFailure.errorClass = "StuckHandler";
    rt->lastFailure.message = msg->reason;
    rt->lastFailure.kind = ErrorKind::Timeout;
  }
  if (!eventListener_.IsEmpty()) {
    eventListener_.Call({Napi::String::New(env, msg->event), Napi::String::New(env, RuntimeName(msg->rt)),
                         Napi::String::New(env, msg->reason)});
  }
}

void BridgeHost::OnInvokeTs(Napi::Env env, Message* msg) {
  JobPtr job = msg->job;
  if (job->state.load() != kRunning || tsInvoker_.IsEmpty()) {
    // Timed out while crossing over: do not start a handler nobody waits for.
    static_cast<TypescriptRuntime*>(runtimes_[2])->NeverRan(job);
    if (tsInvoker_.IsEmpty()) {
      bool now = false;
      ForeignError e;
      e.kind = ErrorKind::HandlerNotFound;
      e.errorClass = "HandlerNotFound";
      e.message = "no typescript handlers are registered; call registerTypescriptHandlers() first";
      e.permanent = true;
      static_cast<TypescriptRuntime*>(runtimes_[2])->Complete(job, false, "", e, &now);
      if (now) Deliver(env, job);
    }
    return;
  }
  tsJobs_[job->id] = job;
  Napi::String payload = Napi::String::New(env, job->payload);
  std::string().swap(job->payload);
  tsInvoker_.Call({Napi::Number::New(env, double(job->id)), Napi::String::New(env, job->handler), payload});
}

// ------------------------------------------------------------- exported API

RuntimeWorker* BridgeHost::RuntimeArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "runtime index expected");
  int r = info[i].As<Napi::Number>().Int32Value();
  if (r < 0 || r >= kRuntimeCount) throw Napi::RangeError::New(info.Env(), "runtime index out of range");
  return runtimes_[r];
}

Napi::Value BridgeHost::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RuntimeWorker* rt = RuntimeArg(info, 0);
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsString() ||
      (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsString()))
    throw Napi::TypeError::New(env, "load(runtime, handlerDirs: string[], sdkDir: string, setupJson?: string)");
  LoadOptions opts;
  Napi::Array dirs = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < dirs.Length(); i++) opts.handlerDirs.push_back(dirs.Get(i).ToString().Utf8Value());
  opts.sdkDir = info[2].As<Napi::String>().Utf8Value();
  if (info.Length() > 3 && info[3].IsString()) opts.setupJson = info[3].As<Napi::String>().Utf8Value();
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  std::string err = rt->Start(std::move(opts));
  if (!err.empty()) {
    d.Reject(Napi::Error::New(env, err).Value());
    return d.Promise();
  }
  napi_deferred raw;
  napi_value promise;
  napi_create_promise(env, &raw, &promise);
  loadDeferred_[int(rt->id())] = raw;
  Hold(env);
  return Napi::Value(env, promise);
}

Napi::Value BridgeHost::Answer(Napi::Env env, RuntimeId rt, const ForeignError& e, bool promise) {
  Napi::Object res = ErrorObject(env, rt, e);
  if (!promise) return res;
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  d.Resolve(res);
  return d.Promise();
}

bool BridgeHost::Admit(RuntimeWorker* rt, int64_t now, bool* probe, ForeignError* e) {
  RuntimeStats& s = rt->stats;
  s.dispatched.fetch_add(1, std::memory_order_relaxed);
  *probe = false;
  if (shutdown_) {
    s.failed.fetch_add(1, std::memory_order_relaxed);
    e->kind = ErrorKind::RuntimeBroken;
    e->errorClass = "BridgeShutDown";
    e->message = "the bridge was shut down";
    return false;
  }
  if (rt->broken()) {
    s.failed.fetch_add(1, std::memory_order_relaxed);
    e->kind = ErrorKind::RuntimeBroken;
    e->errorClass = "RuntimeBroken";
    e->message = std::string("the ") + rt->name() + " runtime is broken: " + rt->brokenReason();
    return false;
  }
  if (rt->phase() != RuntimeWorker::kReady) {
    s.failed.fetch_add(1, std::memory_order_relaxed);
    e->kind = ErrorKind::NotLoaded;
    e->errorClass = "NotLoaded";
    e->message = rt->phase() == RuntimeWorker::kFailed
                     ? std::string("the ") + rt->name() + " runtime failed to load (see the error load() rejected with)"
                     : std::string("the ") + rt->name() + " runtime is not loaded; await bridge.load('" + rt->name() +
                           "') first";
    return false;
  }
  if (!rt->breaker.ShouldAllow(now, probe)) {
    s.rejectedByBreaker.fetch_add(1, std::memory_order_relaxed);
    const RuntimeWorker::Failure& f = rt->lastFailure;
    e->kind = ErrorKind::CircuitOpen;
    e->errorClass = "CircuitOpen";
    e->message = std::string("the ") + rt->name() +
                 " circuit breaker is open after repeated failures of the runtime itself (timeouts, a stuck "
                 "interpreter); the last was " +
                 (f.kind == ErrorKind::None ? std::string("not recorded") : f.errorClass + ": " + f.message) +
                 ". It lets a probe call through " + std::to_string(rt->breaker.config().cooldownMs) +
                 " ms after opening; the step will be retried after its backoff";
    return false;
  }
  return true;
}

bool BridgeHost::SyncEligible(RuntimeWorker* rt, const std::string& handler) {
  uint32_t budgetUs = rt->syncWaitUs.load(std::memory_order_relaxed);
  if (budgetUs == 0) return false;
  // Another call in flight: this one would wait behind it.
  if (rt->stats.inFlight.load(std::memory_order_relaxed) != 0) return false;
  auto& m = runNs_[int(rt->id())];
  auto it = m.find(handler);
  return it == m.end() || it->second <= int64_t(budgetUs) * 1000;
}

// The JS thread waits until the runtime thread has claimed the job or the
// budget is spent; then the call goes on asynchronously through the
// thread-safe function, exactly like Dispatch(). It waits by yielding its CPU
// (sched_yield), not by a pause loop: on the 2-vCPU VMs weft runs on, a
// pause loop kept the woken interpreter thread from running and made cold
// calls slower than no wait at all (python p50 488 µs against 235 µs with
// yields and 342 µs without waiting, interleaved, bench notes in the commit).
Napi::Value BridgeHost::AwaitShort(Napi::Env env, const JobPtr& job, RuntimeWorker* rt) {
  int64_t until = job->dispatchNs + int64_t(rt->syncWaitUs.load(std::memory_order_relaxed)) * 1000;
  while (job->handoff.load(std::memory_order_acquire) != kDelivered) {
    if (NowNs() >= until) {
      int expected = kSyncWaiting;
      if (job->handoff.compare_exchange_strong(expected, kAsync, std::memory_order_acq_rel)) {
        rt->stats.syncWaitMisses.fetch_add(1, std::memory_order_relaxed);
        return Napi::Value(env, Defer(env, job));
      }
      break;  // delivered in the meantime
    }
    sched_yield();
  }
  rt->stats.syncReturns.fetch_add(1, std::memory_order_relaxed);
  return Napi::Value(env, Outcome(env, job));
}

Napi::Value BridgeHost::Submit(const Napi::CallbackInfo& info, bool allowSync) {
  Napi::Env env = info.Env();
  int64_t t0 = NowNs();
  RuntimeWorker* rt = RuntimeArg(info, 0);
  if (info.Length() < 4 || !info[1].IsString() || !info[2].IsString() || !info[3].IsNumber())
    throw Napi::TypeError::New(env, std::string(allowSync ? "call" : "dispatch") +
                                        "(runtime, handler: string, payload: string, timeoutMs: number)");
  RuntimeId id = rt->id();
  RuntimeStats& s = rt->stats;
  bool probe = false;
  ForeignError e;
  if (!Admit(rt, t0, &probe, &e)) return Answer(env, id, e, !allowSync);
  JobPtr job = std::make_shared<Job>();
  job->id = nextJobId_++;
  job->runtime = id;
  job->handler = info[1].As<Napi::String>().Utf8Value();
  job->payload = info[2].As<Napi::String>().Utf8Value();
  double t = info[3].As<Napi::Number>().DoubleValue();
  job->timeoutMs = t >= 1 ? (t > 86400000 ? 86400000u : uint32_t(t)) : 1u;
  job->probe = probe;
  job->dispatchNs = t0;
  job->callKey = CallKey(info, 4);
  {
    auto& runs = runNs_[int(id)];
    auto it = runs.find(job->handler);
    job->shortRun = it != runs.end() && it->second <= kShortRunNs;
  }
  bool sync = allowSync && SyncEligible(rt, job->handler);
  if (sync) job->handoff.store(kSyncWaiting, std::memory_order_relaxed);
  RuntimeWorker::Admission a = rt->Enqueue(job);
  s.serialise.Record(NowNs() - t0);
  if (a != RuntimeWorker::kAccepted) {
    job->state.store(kAborted);
    if (probe) rt->breaker.ReleaseProbe();
    if (a == RuntimeWorker::kQueueFull) {
      s.rejectedQueueFull.fetch_add(1, std::memory_order_relaxed);
      e.kind = ErrorKind::QueueFull;
      e.errorClass = "QueueFull";
      e.message = std::string("the ") + rt->name() + " queue is full; too many calls in flight";
    } else {
      s.failed.fetch_add(1, std::memory_order_relaxed);
      e.kind = ErrorKind::RuntimeBroken;
      e.errorClass = "RuntimeBroken";
      e.message = std::string("the ") + rt->name() + " runtime is broken: " + rt->brokenReason();
    }
    return Answer(env, id, e, !allowSync);
  }
  s.inFlight.fetch_add(1, std::memory_order_relaxed);
  if (job->callKey) keyed_[int(id)][job->callKey] = job;
  if (sync) return AwaitShort(env, job, rt);
  return Napi::Value(env, Defer(env, job));
}

// dispatch(runtime, handler, payload, timeoutMs) -> Promise<BridgeResult>
Napi::Value BridgeHost::Dispatch(const Napi::CallbackInfo& info) { return Submit(info, false); }

// call(runtime, handler, payload, timeoutMs) -> BridgeResult | Promise<BridgeResult>
Napi::Value BridgeHost::Call(const Napi::CallbackInfo& info) { return Submit(info, true); }

// beginTypescript(handler, timeoutMs, key?) -> jobId | BridgeResult (rejected without running)
// The inline typescript target: the handler runs on the JS thread right after
// this returns; its timeout counts from now.
Napi::Value BridgeHost::BeginTypescript(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t t0 = NowNs();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "beginTypescript(handler: string, timeoutMs: number)");
  RuntimeWorker* rt = runtimes_[int(RuntimeId::Typescript)];
  bool probe = false;
  ForeignError e;
  if (!Admit(rt, t0, &probe, &e)) return Answer(env, RuntimeId::Typescript, e, false);
  JobPtr job = std::make_shared<Job>();
  job->id = nextJobId_++;
  job->runtime = RuntimeId::Typescript;
  job->handler = info[0].As<Napi::String>().Utf8Value();
  double t = info[1].As<Napi::Number>().DoubleValue();
  job->timeoutMs = t >= 1 ? (t > 86400000 ? 86400000u : uint32_t(t)) : 1u;
  job->probe = probe;
  job->dispatchNs = job->enqueuedNs = job->startNs = t0;
  job->state.store(kRunning, std::memory_order_relaxed);
  job->callKey = CallKey(info, 2);
  if (job->callKey) keyed_[int(RuntimeId::Typescript)][job->callKey] = job;
  // Until DeferTypescript the JS thread is inside the handler, which nothing
  // can interrupt: its timeout is checked when it returns, and the watchdog
  // watches it only once it has returned a Promise.
  job->handoff.store(kSyncWaiting, std::memory_order_relaxed);
  tsJobs_[job->id] = job;
  rt->stats.inFlight.fetch_add(1, std::memory_order_relaxed);
  rt->stats.running.fetch_add(1, std::memory_order_relaxed);
  rt->stats.serialise.Record(NowNs() - t0);
  return Napi::Number::New(env, double(job->id));
}

// deferTypescript(jobId) -> Promise<BridgeResult>
// The inline handler returned a Promise: from now on the outcome is
// delivered asynchronously, by CompleteTypescript or by the watchdog, which
// starts watching it now with the deadline counted from the handler's start.
Napi::Value BridgeHost::DeferTypescript(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "deferTypescript(jobId: number)");
  auto it = tsJobs_.find(uint64_t(info[0].As<Napi::Number>().DoubleValue()));
  if (it == tsJobs_.end()) throw Napi::Error::New(env, "deferTypescript: no such typescript job");
  JobPtr job = it->second;
  if (job->deferred || job->settled)
    throw Napi::Error::New(env, "deferTypescript: the job was already deferred or answered");
  job->handoff.store(kAsync, std::memory_order_release);
  napi_value promise = Defer(env, job);
  watchdog_->Watch(job, runtimes_[int(RuntimeId::Typescript)]);
  return Napi::Value(env, promise);
}

// configure(runtime, {failureThreshold, successThreshold, cooldownMs, slowCallMs, halfOpenMaxProbes, graceMs,
//                     queueCapacity, syncWaitUs (at most 1 s), idleSpinUs (at most 10 ms),
//                     threads (python, ruby: grows the handler pool, at most 4096), maxStuck,
//                     loopBlockedMs (python)})
Napi::Value BridgeHost::Configure(const Napi::CallbackInfo& info) {
  RuntimeWorker* rt = RuntimeArg(info, 0);
  if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(info.Env(), "configure(runtime, options)");
  Napi::Object o = info[1].As<Napi::Object>();
  BreakerConfig c = rt->breaker.config();
  c.failureThreshold = U32(o, "failureThreshold", c.failureThreshold);
  c.successThreshold = U32(o, "successThreshold", c.successThreshold);
  c.cooldownMs = U32(o, "cooldownMs", c.cooldownMs);
  c.slowCallMs = U32(o, "slowCallMs", c.slowCallMs);
  c.halfOpenMaxProbes = U32(o, "halfOpenMaxProbes", c.halfOpenMaxProbes);
  rt->breaker.Configure(c);
  rt->graceMs.store(U32(o, "graceMs", rt->graceMs.load()));
  uint32_t syncWait = U32(o, "syncWaitUs", rt->syncWaitUs.load());
  rt->syncWaitUs.store(syncWait > 1000000 ? 1000000 : syncWait);
  uint32_t spin = U32(o, "idleSpinUs", rt->idleSpinUs.load());
  rt->idleSpinUs.store(spin > 10000 ? 10000 : spin);
  if (o.Has("queueCapacity")) rt->SetQueueCapacity(U32(o, "queueCapacity", 4096));
  uint32_t stuck = U32(o, "maxStuck", rt->maxStuck.load());
  rt->maxStuck.store(stuck ? stuck : 1);
  uint32_t threads = U32(o, "threads", 0);
  if (threads) rt->SetThreads(threads > 4096 ? 4096 : threads);
  if (rt->id() == RuntimeId::Python) {
    auto* py = static_cast<PythonRuntime*>(rt);
    py->loopBlockedMs.store(U32(o, "loopBlockedMs", py->loopBlockedMs.load()));
  }
  return info.Env().Undefined();
}

Napi::Value BridgeHost::ResetBreaker(const Napi::CallbackInfo& info) {
  RuntimeWorker* rt = RuntimeArg(info, 0);
  rt->breaker.Reset();
  rt->lastFailure = RuntimeWorker::Failure();
  return info.Env().Undefined();
}

Napi::Value BridgeHost::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RuntimeWorker* rt = RuntimeArg(info, 0);
  RuntimeStats& s = rt->stats;
  Napi::Object o = Napi::Object::New(env);
  o.Set("dispatched", double(s.dispatched.load()));
  o.Set("completed", double(s.completed.load()));
  o.Set("failed", double(s.failed.load()));
  o.Set("timedOut", double(s.timedOut.load()));
  o.Set("rejectedByBreaker", double(s.rejectedByBreaker.load()));
  o.Set("rejectedQueueFull", double(s.rejectedQueueFull.load()));
  o.Set("inFlight", double(s.inFlight.load()));
  o.Set("lateResults", double(s.lateResults.load()));
  o.Set("syncReturns", double(s.syncReturns.load()));
  o.Set("syncWaitMisses", double(s.syncWaitMisses.load()));
  o.Set("running", double(s.running.load()));
  o.Set("stuck", double(s.stuck.load()));
  o.Set("stuckTotal", double(s.stuckTotal.load()));
  o.Set("threads", double(s.threads.load()));
  if (rt->id() == RuntimeId::Python) {
    Napi::Object loop = Napi::Object::New(env);
    loop.Set("blocked", double(s.loopBlocked.load()));
    loop.Set("maxLagMs", double(s.loopMaxLagUs.load()) / 1000.0);
    o.Set("loop", loop);
  }
  static const char* kStates[] = {"closed", "open", "half_open"};
  Napi::Object b = Napi::Object::New(env);
  b.Set("state", kStates[rt->breaker.state()]);
  b.Set("consecutiveFailures", double(rt->breaker.consecutiveFailures()));
  b.Set("timesOpened", double(rt->breaker.timesOpened()));
  const RuntimeWorker::Failure& f = rt->lastFailure;
  if (f.kind == ErrorKind::None) {
    b.Set("lastFailure", env.Null());
  } else {
    Napi::Object last = Napi::Object::New(env);
    last.Set("class", f.errorClass);
    last.Set("message", f.message);
    last.Set("kind", ErrorKindName(f.kind));
    b.Set("lastFailure", last);
  }
  o.Set("breaker", b);
  o.Set("broken", rt->broken());
  o.Set("brokenReason", rt->brokenReason());
  static const char* kPhases[] = {"idle", "loading", "ready", "failed"};
  o.Set("phase", kPhases[rt->phase()]);
  Napi::Object h = Napi::Object::New(env);
  const std::pair<const char*, LatencyHistogram*> hs[] = {
      {"serialise", &s.serialise}, {"queueWait", &s.queueWait}, {"run", &s.run}, {"return", &s.returnTime}};
  for (auto& p : hs) {
    Napi::Object x = Napi::Object::New(env);
    Napi::Array counts = Napi::Array::New(env, LatencyHistogram::kBuckets);
    for (int i = 0; i < LatencyHistogram::kBuckets; i++) counts.Set(uint32_t(i), double(p.second->Bucket(i)));
    x.Set("counts", counts);
    x.Set("count", double(p.second->Count()));
    x.Set("sumNs", double(p.second->SumNs()));
    h.Set(p.first, x);
  }
  o.Set("histograms", h);
  BreakerConfig bc = rt->breaker.config();
  Napi::Object c = Napi::Object::New(env);
  c.Set("failureThreshold", double(bc.failureThreshold));
  c.Set("successThreshold", double(bc.successThreshold));
  c.Set("cooldownMs", double(bc.cooldownMs));
  c.Set("slowCallMs", double(bc.slowCallMs));
  c.Set("halfOpenMaxProbes", double(bc.halfOpenMaxProbes));
  c.Set("graceMs", double(rt->graceMs.load()));
  c.Set("queueCapacity", double(rt->queueCapacity()));
  c.Set("syncWaitUs", double(rt->syncWaitUs.load()));
  c.Set("idleSpinUs", double(rt->idleSpinUs.load()));
  c.Set("maxStuck", double(rt->maxStuck.load()));
  if (rt->id() == RuntimeId::Python)
    c.Set("loopBlockedMs", double(static_cast<PythonRuntime*>(rt)->loopBlockedMs.load()));
  o.Set("config", c);
  return o;
}

Napi::Value BridgeHost::IsBroken(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), RuntimeArg(info, 0)->broken());
}

Napi::Value BridgeHost::SetTypescriptInvoker(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "function expected");
  tsInvoker_ = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// completeTypescript(jobId, ok, json | [class, message, backtrace, permanent, kind]) -> BridgeResult | undefined
// A BridgeResult for an inline job whose handler returned synchronously;
// undefined when the job's own Promise gets the outcome.
Napi::Value BridgeHost::CompleteTypescript(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "completeTypescript(id, ok, value)");
  uint64_t id = uint64_t(info[0].As<Napi::Number>().DoubleValue());
  auto it = tsJobs_.find(id);
  if (it == tsJobs_.end()) return env.Undefined();
  JobPtr job = std::move(it->second);
  tsJobs_.erase(it);
  bool ok = info[1].ToBoolean();
  std::string json;
  ForeignError e;
  if (ok) {
    json = info[2].ToString().Utf8Value();
  } else if (info[2].IsArray()) {
    Napi::Array a = info[2].As<Napi::Array>();
    e.errorClass = a.Get(uint32_t(0)).ToString().Utf8Value();
    e.message = a.Get(uint32_t(1)).ToString().Utf8Value();
    Napi::Value bt = a.Get(uint32_t(2));
    if (bt.IsArray()) {
      Napi::Array arr = bt.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); i++) e.backtrace.push_back(arr.Get(i).ToString().Utf8Value());
    }
    e.permanent = a.Get(uint32_t(3)).ToBoolean();
    std::string kind = a.Get(uint32_t(4)).ToString().Utf8Value();
    e.kind = kind == "invalid_return"      ? ErrorKind::InvalidReturn
             : kind == "handler_not_found" ? ErrorKind::HandlerNotFound
                                           : ErrorKind::Raised;
  }
  bool now = false;
  RuntimeWorker* rt = runtimes_[int(RuntimeId::Typescript)];
  bool inlineSync = job->handoff.load(std::memory_order_acquire) == kSyncWaiting;
  static_cast<TypescriptRuntime*>(rt)->Complete(job, ok, std::move(json), std::move(e), &now);
  if (!now) return env.Undefined();  // the watchdog answered it already (timed out)
  if (!inlineSync) {
    Deliver(env, job);
    return env.Undefined();
  }
  // Inline and synchronous: answer now. A handler that overran its timeout
  // could not be interrupted; its result is dropped for the same timeout the
  // watchdog would have reported.
  int64_t ranNs = job->endNs - job->startNs;
  if (ranNs > int64_t(job->timeoutMs) * 1000000) {
    rt->stats.lateResults.fetch_add(1, std::memory_order_relaxed);
    job->ok = false;
    std::string().swap(job->resultJson);
    job->error = ForeignError();
    job->error.kind = ErrorKind::Timeout;
    job->error.errorClass = "HandlerTimeout";
    job->error.message = std::string("handler \"") + job->handler + "\" did not return within " +
                         std::to_string(job->timeoutMs) + " ms of starting (typescript); it ran synchronously for " +
                         std::to_string(ranNs / 1000000) +
                         " ms, which nothing can interrupt, and its result was dropped";
  }
  rt->stats.syncReturns.fetch_add(1, std::memory_order_relaxed);
  return Napi::Value(env, Outcome(env, job));
}

Napi::Value BridgeHost::SetEventListener(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "function expected");
  eventListener_ = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value BridgeHost::Shutdown(const Napi::CallbackInfo& info) {
  shutdown_ = true;
  return info.Env().Undefined();
}

// cancel(runtime, key) -> boolean
// Settles the call made with `key` at once with a permanent `cancelled`
// error: a queued call is taken off the queue and never runs; a running one
// is interrupted the way a timeout interrupts it (HandlerTimeout's sibling,
// Cancelled, raised in the handler) and, if it ignores that, the runtime is
// marked broken after its grace period. false when no such call is in flight
// or it finished just before (its own outcome is on its way).
Napi::Value BridgeHost::Cancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RuntimeWorker* rt = RuntimeArg(info, 0);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "cancel(runtime, key: number)");
  auto& keyed = keyed_[int(rt->id())];
  auto it = keyed.find(uint64_t(info[1].As<Napi::Number>().DoubleValue()));
  if (it == keyed.end()) return Napi::Boolean::New(env, false);
  JobPtr job = it->second;
  bool running = false;
  if (job->Claim(kQueued, kCancelled)) {
    rt->Unqueue(job.get());
  } else if (job->Claim(kRunning, kCancelled)) {
    running = true;
  } else {
    return Napi::Boolean::New(env, false);  // already claimed: its outcome is being delivered
  }
  job->endNs = NowNs();
  job->ok = false;
  job->error = ForeignError();
  job->error.kind = ErrorKind::Cancelled;
  job->error.errorClass = "Cancelled";
  job->error.message = "the task was cancelled";
  job->error.permanent = true;
  if (running) {
    watchdog_->Unwatch(job.get());
    // A JS handler cannot be interrupted and holds no thread: its late
    // settlement is dropped (CompleteTypescript finds the job claimed).
    if (rt->id() != RuntimeId::Typescript) {
      watchdog_->WatchGrace(job, rt);
      rt->Interrupt(job->id, RuntimeWorker::Reason::kCancel);
    }
  }
  // The JS thread is here, so it waits for nothing (handoff stays kAsync):
  // resolve the Promise now.
  if (!job->settled) Deliver(env, job);
  return Napi::Boolean::New(env, true);
}

// asyncHandlers(runtime) -> string[]: the loaded handlers that run on an event loop (python's async def).
Napi::Value BridgeHost::AsyncHandlers(const Napi::CallbackInfo& info) {
  RuntimeWorker* rt = RuntimeArg(info, 0);
  Napi::Array out = Napi::Array::New(info.Env());
  if (rt->phase() != RuntimeWorker::kReady) return out;
  std::vector<std::string> keys = rt->AsyncHandlers();
  for (size_t i = 0; i < keys.size(); i++) out.Set(uint32_t(i), keys[i]);
  return out;
}

Napi::Value BridgeHost::ProcessInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("signalChainInstalled", SignalChain::installed());
  o.Set("sigchldReinstalls", double(SignalChain::reinstalls()));
  o.Set("outstanding", outstanding_);
  return o;
}

}  // namespace weft
