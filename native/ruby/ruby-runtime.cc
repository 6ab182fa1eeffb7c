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
VALUE g_mainThread = Qnil;    // the Ruby thread running handlers
VALUE g_timeoutClass = Qnil;  // Weft::HandlerTimeout
VALUE g_cancelClass = Qnil;   // Weft::Cancelled
VALUE g_permanentClass = Qnil;
VALUE g_invalidReturnClass = Qnil;
VALUE g_notFoundClass = Qnil;
ID g_idInvoke, g_idMessage, g_idBacktrace, g_idRaise, g_idLoadHandlers;

// ---- protected bodies: plain data only, nothing with a destructor ----

struct StartArgs {
  const char* sdkDir;
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
  return rb_funcall(g_bridge, g_idLoadHandlers, 1, a->dirs);
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

// ---- waiting for work without the GVL (pitfall 7) ----

struct WaitCtx {
  RubyRuntime* rt;
  JobPtr* slot;  // lives in Serve()'s frame, outside rb_protect
};

void* PopWithoutGvl(void* arg) {
  WaitCtx* w = static_cast<WaitCtx*>(arg);
  w->rt->WaitForJob(w->slot);
  return nullptr;
}

void UbfWakeQueue(void* arg) { static_cast<WaitCtx*>(arg)->rt->queue().Interrupt(); }

VALUE WaitProtected(VALUE arg) {
  rb_thread_call_without_gvl(PopWithoutGvl, reinterpret_cast<void*>(arg), UbfWakeQueue, reinterpret_cast<void*>(arg));
  return Qnil;
}

// ---- the watchdog Ruby thread ----

struct IrqWait {
  RubyRuntime* rt;
  uint64_t jobId;
  bool cancel;
};

void* IrqWaitWithoutGvl(void* arg) {
  IrqWait* w = static_cast<IrqWait*>(arg);
  w->rt->WaitInterruptRequest(&w->jobId, &w->cancel);
  return nullptr;
}
void UbfWakeIrq(void* arg) { static_cast<IrqWait*>(arg)->rt->WakeInterruptWaiter(); }

VALUE RaiseTimeoutProtected(VALUE) {
  VALUE msg = rb_utf8_str_new_cstr("the step handler exceeded its timeout (weft bridge watchdog)");
  return rb_funcall(g_mainThread, g_idRaise, 2, g_timeoutClass, msg);
}

VALUE RaiseCancelProtected(VALUE) {
  VALUE msg = rb_utf8_str_new_cstr("the task was cancelled");
  return rb_funcall(g_mainThread, g_idRaise, 2, g_cancelClass, msg);
}

VALUE IrqIteration(VALUE arg) {
  IrqWait* w = reinterpret_cast<IrqWait*>(arg);
  w->jobId = 0;
  rb_thread_call_without_gvl(IrqWaitWithoutGvl, w, UbfWakeIrq, w);
  // Holding the GVL again: the main Ruby thread cannot switch jobs now.
  if (w->jobId != 0 && w->rt->runningJob() == w->jobId) {
    int st = 0;
    rb_protect(w->cancel ? RaiseCancelProtected : RaiseTimeoutProtected, Qnil, &st);
    if (st) rb_set_errinfo(Qnil);
  }
  return Qnil;
}

VALUE IrqThreadBody(void* arg) {
  IrqWait w{static_cast<RubyRuntime*>(arg), 0, false};
  for (;;) {
    int st = 0;
    rb_protect(IrqIteration, reinterpret_cast<VALUE>(&w), &st);
    if (st) rb_set_errinfo(Qnil);
  }
  return Qnil;
}

}  // namespace

bool RubyRuntime::WaitInterruptRequest(uint64_t* jobId, bool* cancel) {
  std::unique_lock<std::mutex> lock(irqMu_);
  irqCv_.wait(lock, [this] { return irqRequest_ != 0 || irqWake_; });
  irqWake_ = false;
  *jobId = irqRequest_;
  *cancel = irqReason_ == Reason::kCancel;
  irqRequest_ = 0;
  return *jobId != 0;
}

void RubyRuntime::WakeInterruptWaiter() {
  {
    std::lock_guard<std::mutex> lock(irqMu_);
    irqWake_ = true;
  }
  irqCv_.notify_all();
}

void RubyRuntime::Interrupt(uint64_t jobId, Reason why) {
  {
    std::lock_guard<std::mutex> lock(irqMu_);
    irqRequest_ = jobId;
    irqReason_ = why;
  }
  irqCv_.notify_all();
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
  g_idInvoke = rb_intern("invoke");
  g_idMessage = rb_intern("message");
  g_idBacktrace = rb_intern("backtrace");
  g_idRaise = rb_intern("raise");
  g_idLoadHandlers = rb_intern("load_handlers");

  VALUE dirs = rb_ary_new();
  for (auto& d : opts_.handlerDirs) rb_ary_push(dirs, rb_utf8_str_new_cstr(d.c_str()));
  StartArgs args{opts_.sdkDir.c_str(), dirs};
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
  rb_thread_create(IrqThreadBody, this);
  ReportLoaded(true, std::move(handlers), ForeignError());

  for (;;) {
    JobPtr job;
    WaitCtx w{this, &job};
    // Pending interrupts (a late Thread#raise) fire when the wait returns;
    // rb_protect swallows them and the popped job is kept in `job`.
    rb_protect(WaitProtected, reinterpret_cast<VALUE>(&w), &st);
    if (st) rb_set_errinfo(Qnil);
    if (!job) continue;
    if (!BeginJob(job)) continue;
    RunJob(job);
  }
}

void RubyRuntime::RunJob(const JobPtr& job) {
  std::string out;
  runningJob_.store(job->id);
  // Cancelled between BeginJob and here: do not start it (see PythonRuntime::RunJob).
  if (job->state.load() != kRunning) {
    runningJob_.store(0);
    std::string().swap(job->payload);
    job->handlerReturned.store(true, std::memory_order_release);
    return;
  }
  CallArgs c{job->handler.data(), long(job->handler.size()), job->payload.data(), long(job->payload.size()), &out};
  int st = 0;
  rb_protect(InvokeProtected, reinterpret_cast<VALUE>(&c), &st);
  runningJob_.store(0, std::memory_order_release);
  std::string().swap(job->payload);
  if (st == 0) {
    FinishJob(job, true, std::move(out), ForeignError());
  } else {
    ForeignError err = DescribeError(st);
    FinishJob(job, false, std::string(), std::move(err));
  }
}

}  // namespace weft
