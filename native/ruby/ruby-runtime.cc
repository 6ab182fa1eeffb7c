// ruby.h must be the only interpreter header in this translation unit
// (bridge-findings pitfall 18).
#include <ruby.h>
#include <ruby/encoding.h>
#include <ruby/thread.h>

#include "ruby/ruby-runtime.h"

#include <pthread.h>

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/completion-sink.h"
#include "ruby/signal-chain.h"

namespace weft {

namespace {

// Kept Ruby objects: registered with the GC (pitfall 9).
VALUE g_bridge = Qnil;        // Weft::Bridge
VALUE g_mainThread = Qnil;    // Ruby's main thread: the pool's control thread
VALUE g_timeoutClass = Qnil;  // Weft::HandlerTimeout
VALUE g_cancelClass = Qnil;   // Weft::Cancelled
VALUE g_permanentClass = Qnil;
VALUE g_invalidReturnClass = Qnil;
VALUE g_notFoundClass = Qnil;
VALUE g_slotThreads = Qnil;  // every pool thread, so the GC keeps them
ID g_idInvoke, g_idMessage, g_idBacktrace, g_idRaise, g_idLoadHandlers, g_idName;

// ---- protected bodies: plain data only, nothing with a destructor ----

struct StartArgs {
  const char* sdkDir;
  const char* setupJson;
  VALUE dirs;
};

VALUE StartProtected(VALUE arg) {
  StartArgs* a = reinterpret_cast<StartArgs*>(arg);
  rb_enc_set_default_external(rb_enc_from_encoding(rb_utf8_encoding()));
  rb_enc_set_default_internal(Qnil);
  VALUE loadPath = rb_gv_get("$LOAD_PATH");
  rb_ary_unshift(loadPath, rb_utf8_str_new_cstr(a->sdkDir));
  rb_require("json");
  rb_require("weft");
  VALUE weft = rb_const_get(rb_cObject, rb_intern("Weft"));
  g_bridge = rb_const_get(weft, rb_intern("Bridge"));
  g_timeoutClass = rb_const_get(weft, rb_intern("HandlerTimeout"));
  g_cancelClass = rb_const_get(weft, rb_intern("Cancelled"));
  g_permanentClass = rb_const_get(weft, rb_intern("PermanentError"));
  g_invalidReturnClass = rb_const_get(weft, rb_intern("InvalidReturn"));
  g_notFoundClass = rb_const_get(weft, rb_intern("HandlerNotFound"));
  return rb_funcall(g_bridge, g_idLoadHandlers, 2, a->dirs, rb_utf8_str_new_cstr(a->setupJson));
}

struct CallArgs {
  const char* handler;
  long handlerLen;
  const char* payload;
  long payloadLen;
  std::string* out;  // owned by the caller's frame, outside rb_protect
};

VALUE InvokeProtected(VALUE arg) {
  CallArgs* c = reinterpret_cast<CallArgs*>(arg);
  VALUE key = rb_utf8_str_new(c->handler, c->handlerLen);
  VALUE payload = rb_utf8_str_new(c->payload, c->payloadLen);
  VALUE res = rb_funcall(g_bridge, g_idInvoke, 2, key, payload);
  StringValue(res);
  c->out->assign(RSTRING_PTR(res), size_t(RSTRING_LEN(res)));
  RB_GC_GUARD(res);
  RB_GC_GUARD(payload);
  return Qnil;
}

VALUE ClassNameProtected(VALUE exc) { return rb_class_name(rb_obj_class(exc)); }
VALUE MessageProtected(VALUE exc) {
  VALUE m = rb_funcall(exc, g_idMessage, 0);
  return rb_obj_as_string(m);
}
VALUE BacktraceProtected(VALUE exc) { return rb_funcall(exc, g_idBacktrace, 0); }

std::string CopyString(VALUE s) {
  if (!RB_TYPE_P(s, T_STRING)) return "";
  return std::string(RSTRING_PTR(s), size_t(RSTRING_LEN(s)));
}

// Reads the exception rb_protect caught. Each part under its own rb_protect,
// because e.g. NameError#message can itself raise (pitfall 6).
ForeignError DescribeError(int jumpState) {
  ForeignError err;
  err.kind = ErrorKind::Raised;
  VALUE exc = rb_errinfo();
  rb_set_errinfo(Qnil);
  if (NIL_P(exc) || !rb_obj_is_kind_of(exc, rb_eException)) {
    err.errorClass = "RubyJump";
    err.message = "the handler left through a non-local jump (Ruby jump state " + std::to_string(jumpState) + ")";
    return err;
  }
  int st = 0;
  VALUE v = rb_protect(ClassNameProtected, exc, &st);
  if (st) {
    rb_set_errinfo(Qnil);
    err.errorClass = "Exception";
  } else {
    err.errorClass = CopyString(v);
  }
  v = rb_protect(MessageProtected, exc, &st);
  if (st) {
    rb_set_errinfo(Qnil);
    err.message = "<the exception's #message raised too>";
  } else {
    err.message = CopyString(v);
  }
  v = rb_protect(BacktraceProtected, exc, &st);
  if (st) {
    rb_set_errinfo(Qnil);
  } else if (RB_TYPE_P(v, T_ARRAY)) {
    long n = RARRAY_LEN(v);
    for (long i = 0; i < n; i++) {
      VALUE line = rb_ary_entry(v, i);
      if (RB_TYPE_P(line, T_STRING)) err.backtrace.push_back(CopyString(line));
    }
  }
  if (RTEST(rb_obj_is_kind_of(exc, g_invalidReturnClass)))
    err.kind = ErrorKind::InvalidReturn;
  else if (RTEST(rb_obj_is_kind_of(exc, g_notFoundClass)))
    err.kind = ErrorKind::HandlerNotFound;
  err.permanent = RTEST(rb_obj_is_kind_of(exc, g_permanentClass)) || err.kind == ErrorKind::InvalidReturn ||
                  err.kind == ErrorKind::HandlerNotFound;
  RB_GC_GUARD(exc);
  return err;
}

// ---- a pool thread: waiting for work without the GVL (pitfall 7) ----

struct WaitCtx {
  RubyRuntime* rt;
  JobPtr* slot;  // lives in SlotLoop()'s frame, outside rb_protect
  JobQueue::Seat* seat;
};

void* PopWithoutGvl(void* arg) {
  WaitCtx* w = static_cast<WaitCtx*>(arg);
  w->rt->WaitForJob(w->slot, w->seat);
  return nullptr;
}

// Ruby's unblocking function: wakes this pool thread alone.
void UbfWakeSlot(void* arg) {
  WaitCtx* w = static_cast<WaitCtx*>(arg);
  w->rt->WakeSlot(w->seat);
}

VALUE WaitProtected(VALUE arg) {
  rb_thread_call_without_gvl(PopWithoutGvl, reinterpret_cast<void*>(arg), UbfWakeSlot, reinterpret_cast<void*>(arg));
  return Qnil;
}

struct RaiseArgs {
  VALUE thread;
  bool cancel;
};

VALUE RaiseProtected(VALUE arg) {
  RaiseArgs* a = reinterpret_cast<RaiseArgs*>(arg);
  VALUE msg = rb_utf8_str_new_cstr(a->cancel ? "the task was cancelled"
                                             : "the step handler exceeded its timeout (weft bridge watchdog)");
  return rb_funcall(a->thread, g_idRaise, 2, a->cancel ? g_cancelClass : g_timeoutClass, msg);
}

// ---- the control thread (Ruby's main thread, after loading) ----

void* ControlWaitWithoutGvl(void* arg) {
  static_cast<RubyRuntime*>(arg)->WaitControl();
  return nullptr;
}
void UbfWakeControl(void* arg) { static_cast<RubyRuntime*>(arg)->WakeControl(); }

VALUE ControlProtected(VALUE arg) {
  RubyRuntime* rt = reinterpret_cast<RubyRuntime*>(arg);
  rb_thread_call_without_gvl(ControlWaitWithoutGvl, rt, UbfWakeControl, rt);
  // Holding the GVL again: no pool thread can switch jobs now.
  rt->ControlIteration();
  return Qnil;
}

}  // namespace

struct RubyRuntime::Slot {
  uint32_t index = 0;
  VALUE thread = Qnil;  // kept alive by g_slotThreads
  std::atomic<uint64_t> runningJob{0};
  JobQueue::Seat seat;  // its place at the queue (the unblocking function wakes it)
  RubyRuntime* rt = nullptr;
};

namespace {

VALUE SlotBody(void* arg) {
  RubyRuntime::Slot* slot = static_cast<RubyRuntime::Slot*>(arg);
  SignalChain::AddRubyThread(pthread_self());
  slot->rt->SlotLoop(slot);
  SignalChain::RemoveRubyThread(pthread_self());
  return Qnil;
}

struct SpawnArgs {
  RubyRuntime::Slot* slot;
};

VALUE SpawnProtected(VALUE arg) {
  RubyRuntime::Slot* slot = reinterpret_cast<SpawnArgs*>(arg)->slot;
  VALUE th = rb_thread_create(SlotBody, slot);
  rb_ary_push(g_slotThreads, th);
  slot->thread = th;
  std::string name = "weft-ruby-" + std::to_string(slot->index);
  rb_funcall(th, g_idName, 1, rb_utf8_str_new(name.data(), long(name.size())));
  return Qnil;
}

}  // namespace

bool RubyRuntime::WaitControl() {
  std::unique_lock<std::mutex> lock(ctlMu_);
  ctlCv_.wait(lock, [this] { return !irqRequests_.empty() || liveThreads_ < wantThreads_ || ctlWake_; });
  ctlWake_ = false;
  return true;
}

void RubyRuntime::WakeControl() {
  {
    std::lock_guard<std::mutex> lock(ctlMu_);
    ctlWake_ = true;
  }
  ctlCv_.notify_all();
}

void RubyRuntime::Interrupt(uint64_t jobId, Reason why) {
  {
    std::lock_guard<std::mutex> lock(ctlMu_);
    irqRequests_.emplace_back(jobId, why);
  }
  ctlCv_.notify_all();
}

void RubyRuntime::SetThreads(uint32_t n) {
  {
    std::lock_guard<std::mutex> lock(ctlMu_);
    if (n <= wantThreads_) return;
    wantThreads_ = n;
  }
  ctlCv_.notify_all();  // the control thread starts them once loaded
}

void RubyRuntime::ReplaceThread(const JobPtr&) {
  {
    std::lock_guard<std::mutex> lock(ctlMu_);
    liveThreads_--;
    stats.threads.store(liveThreads_, std::memory_order_relaxed);
  }
  ctlCv_.notify_all();
}

void RubyRuntime::ControlIteration() {
  std::deque<std::pair<uint64_t, Reason>> batch;
  {
    std::lock_guard<std::mutex> lock(ctlMu_);
    batch.swap(irqRequests_);
  }
  for (auto& [want, why] : batch) {
    for (Slot* s : slots_) {
      if (s->runningJob.load(std::memory_order_acquire) != want) continue;
      RaiseArgs a{s->thread, why == Reason::kCancel};
      int st = 0;
      rb_protect(RaiseProtected, reinterpret_cast<VALUE>(&a), &st);
      if (st) rb_set_errinfo(Qnil);
      break;
    }
  }
  SpawnPending();
}

void RubyRuntime::SpawnPending() {
  for (;;) {
    Slot* slot;
    {
      std::lock_guard<std::mutex> lock(ctlMu_);
      if (liveThreads_ >= wantThreads_) return;
      slot = new Slot();  // leaky, like every thread's state here
      slot->index = uint32_t(slots_.size()) + 1;
      slot->rt = this;
      liveThreads_++;
      stats.threads.store(liveThreads_, std::memory_order_relaxed);
    }
    slots_.push_back(slot);
    SpawnArgs a{slot};
    int st = 0;
    rb_protect(SpawnProtected, reinterpret_cast<VALUE>(&a), &st);
    if (st) {
      rb_set_errinfo(Qnil);
      std::lock_guard<std::mutex> lock(ctlMu_);
      liveThreads_--;
      stats.threads.store(liveThreads_, std::memory_order_relaxed);
      return;  // Ruby could not start a thread now; the next request tries again
    }
  }
}

void RubyRuntime::ThreadMain() {
  // Pitfall 1: remember every handler before Ruby installs its own.
  SignalChain::SaveBeforeRuby();
  // Pitfall 5: a fake argv so Ruby's setproctitle support cannot move Node's
  // argv/environ.
  static char arg0[] = "weft-ruby";
  static char* fakeArgv[] = {arg0, nullptr};
  int argc = 1;
  char** argv = fakeArgv;
  ruby_sysinit(&argc, &argv);
  RUBY_INIT_STACK;
  // ruby_setup, not ruby_init (which exit()s on failure).
  int state = ruby_setup();
  if (state) {
    SignalChain::RestoreAfterRuby(pthread_self());
    ForeignError err;
    err.kind = ErrorKind::Raised;
    err.errorClass = "RubyInitError";
    err.message = "ruby_setup() failed with state " + std::to_string(state);
    ReportLoaded(false, {}, err);
    return;
  }
  // Pitfall 5: ruby_options loads the prelude (Kernel#class, GC.start,
  // Array#pack ...), encodings and rubygems (json is a default gem), like the
  // ruby command does. Pitfall 6: --disable=error_highlight.
  static char o0[] = "ruby", o1[] = "--disable=error_highlight", o2[] = "-e", o3[] = "nil";
  static char* opts[] = {o0, o1, o2, o3, nullptr};
  void* node = ruby_options(4, opts);
  int status = 0;
  bool executable = ruby_executable_node(node, &status);
  // Pitfalls 1-4: give Node its signal handlers back, then chain SEGV/CHLD.
  SignalChain::RestoreAfterRuby(pthread_self());
  if (!executable) {
    ForeignError err;
    err.kind = ErrorKind::Raised;
    err.errorClass = "RubyInitError";
    err.message = "ruby_options() failed (status " + std::to_string(status) + "); check RUBYOPT";
    ReportLoaded(false, {}, err);
    return;
  }
  Serve();  // never returns; all Ruby use happens inside RUBY_INIT_STACK's frame
}

void RubyRuntime::Serve() {
  rb_gc_register_address(&g_bridge);
  rb_gc_register_address(&g_mainThread);
  rb_gc_register_address(&g_timeoutClass);
  rb_gc_register_address(&g_cancelClass);
  rb_gc_register_address(&g_permanentClass);
  rb_gc_register_address(&g_invalidReturnClass);
  rb_gc_register_address(&g_notFoundClass);
  rb_gc_register_address(&g_slotThreads);
  g_idInvoke = rb_intern("invoke");
  g_idMessage = rb_intern("message");
  g_idBacktrace = rb_intern("backtrace");
  g_idRaise = rb_intern("raise");
  g_idLoadHandlers = rb_intern("load_handlers");
  g_idName = rb_intern("name=");
  g_slotThreads = rb_ary_new();

  VALUE dirs = rb_ary_new();
  for (auto& d : opts_.handlerDirs) rb_ary_push(dirs, rb_utf8_str_new_cstr(d.c_str()));
  StartArgs args{opts_.sdkDir.c_str(), opts_.setupJson.c_str(), dirs};
  int st = 0;
  VALUE keys = rb_protect(StartProtected, reinterpret_cast<VALUE>(&args), &st);
  RB_GC_GUARD(dirs);
  if (st) {
    ForeignError err = DescribeError(st);
    if (err.errorClass.empty()) err.errorClass = "RubyLoadError";
    ReportLoaded(false, {}, err);
    // Stay alive but idle so nothing else ever touches Ruby from another thread.
    for (;;) pause();
  }
  std::vector<std::string> handlers;
  if (RB_TYPE_P(keys, T_ARRAY)) {
    for (long i = 0; i < RARRAY_LEN(keys); i++) handlers.push_back(CopyString(rb_ary_entry(keys, i)));
  }
  g_mainThread = rb_thread_current();
  SpawnPending();
  ReportLoaded(true, std::move(handlers), ForeignError());

  for (;;) {
    // Pending interrupts of this thread fire when the wait returns; rb_protect swallows them.
    rb_protect(ControlProtected, reinterpret_cast<VALUE>(this), &st);
    if (st) rb_set_errinfo(Qnil);
  }
}

void RubyRuntime::SlotLoop(Slot* slot) {
  for (;;) {
    JobPtr job;
    WaitCtx w{this, &job, &slot->seat};
    // A late Thread#raise fires when the wait returns; rb_protect swallows it
    // and the popped job is kept in `job`.
    int st = 0;
    rb_protect(WaitProtected, reinterpret_cast<VALUE>(&w), &st);
    if (st) rb_set_errinfo(Qnil);
    if (!job) continue;
    if (!BeginJob(job)) continue;
    if (RunJob(slot, job)) {  // declared stuck and replaced: retire
      queue_.Leave(&slot->seat);
      return;
    }
  }
}

bool RubyRuntime::RunJob(Slot* slot, const JobPtr& job) {
  std::string out;
  slot->runningJob.store(job->id);
  // Cancelled between BeginJob and here: do not start it (see PythonRuntime::RunJob).
  if (job->state.load() != kRunning) {
    slot->runningJob.store(0);
    std::string().swap(job->payload);
    return HandlerReturned(job);
  }
  CallArgs c{job->handler.data(), long(job->handler.size()), job->payload.data(), long(job->payload.size()), &out};
  int st = 0;
  rb_protect(InvokeProtected, reinterpret_cast<VALUE>(&c), &st);
  slot->runningJob.store(0, std::memory_order_release);
  std::string().swap(job->payload);
  if (st == 0) return FinishJob(job, true, std::move(out), ForeignError());
  ForeignError err = DescribeError(st);
  return FinishJob(job, false, std::string(), std::move(err));
}

}  // namespace weft
