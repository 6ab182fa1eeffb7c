// Python.h must come first and must be the only interpreter header in this
// translation unit (bridge-findings pitfall 18).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/python-runtime.h"

#include <dlfcn.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/completion-sink.h"
#include "common/fatal-signals.h"

#ifndef WEFT_PYTHON_HOME
#error "WEFT_PYTHON_HOME must be defined by binding.gyp"
#endif
#ifndef WEFT_PYTHON_SONAME
#error "WEFT_PYTHON_SONAME must be defined by binding.gyp"
#endif

namespace weft {

namespace {

// RAII holder for a new reference; used only in this file, never across a
// GIL release.
struct Ref {
  PyObject* p;
  explicit Ref(PyObject* o = nullptr) : p(o) {}
  ~Ref() { Py_XDECREF(p); }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  PyObject* get() const { return p; }
  explicit operator bool() const { return p != nullptr; }
};

std::string Utf8(PyObject* o) {
  if (!o) return "";
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(o, &n);
  if (!s) {
    PyErr_Clear();
    return "<undecodable>";
  }
  return std::string(s, size_t(n));
}

// Reads describe()'s (kind, class, message, backtrace, permanent) into *err.
bool FromDescription(PyObject* d, ForeignError* err) {
  if (!PyTuple_Check(d) || PyTuple_GET_SIZE(d) != 5) return false;
  std::string kind = Utf8(PyTuple_GET_ITEM(d, 0));
  err->kind = kind == "invalid_return"      ? ErrorKind::InvalidReturn
              : kind == "handler_not_found" ? ErrorKind::HandlerNotFound
                                            : ErrorKind::Raised;
  err->errorClass = Utf8(PyTuple_GET_ITEM(d, 1));
  err->message = Utf8(PyTuple_GET_ITEM(d, 2));
  PyObject* bt = PyTuple_GET_ITEM(d, 3);
  if (PyList_Check(bt)) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(bt); i++) err->backtrace.push_back(Utf8(PyList_GET_ITEM(bt, i)));
  }
  err->permanent = PyObject_IsTrue(PyTuple_GET_ITEM(d, 4)) == 1;
  return true;
}

// Turns the pending Python exception into a ForeignError. Uses the SDK's
// describe() for class/message/backtrace; falls back to plain C calls if
// that fails too. Requires the GIL; leaves no exception set.
ForeignError TakeError(PyObject* describe) {
  ForeignError err;
  err.kind = ErrorKind::Raised;
  PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  if (!type) {
    err.errorClass = "SystemError";
    err.message = "a Python call failed without setting an exception";
    return err;
  }
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb && value) PyException_SetTraceback(value, tb);
  Ref t(type), v(value), b(tb);
  if (describe && value) {
    Ref d(PyObject_CallOneArg(static_cast<PyObject*>(describe), value));
    if (d && FromDescription(d.get(), &err)) {
      PyErr_Clear();
      return err;
    }
    PyErr_Clear();
  }
  err.errorClass = reinterpret_cast<PyTypeObject*>(type)->tp_name;
  if (value) {
    Ref s(PyObject_Str(value));
    err.message = s ? Utf8(s.get()) : "<unprintable exception>";
  }
  PyErr_Clear();
  return err;
}

std::string HomeDir() {
  const char* env = getenv("WEFT_PYTHON_HOME");
  return (env && *env) ? std::string(env) : std::string(WEFT_PYTHON_HOME);
}

PythonRuntime* g_python = nullptr;  // the one PythonRuntime, for weft._native

// ---- weft._native: what the SDK's event loop calls back into ----

PyObject* NativeTakeAsync(PyObject*, PyObject*) { return static_cast<PyObject*>(g_python->TakeAsync()); }

PyObject* NativeFinish(PyObject*, PyObject* const* args, Py_ssize_t n) {
  if (n != 3) {
    PyErr_SetString(PyExc_TypeError, "finish(job_id, ok, value)");
    return nullptr;
  }
  unsigned long long id = PyLong_AsUnsignedLongLong(args[0]);
  if (PyErr_Occurred()) return nullptr;
  g_python->FinishAsync(uint64_t(id), PyObject_IsTrue(args[1]) == 1, args[2]);
  Py_RETURN_NONE;
}

PyObject* NativeLoopBlocked(PyObject*, PyObject* const* args, Py_ssize_t n) {
  if (n != 2) {
    PyErr_SetString(PyExc_TypeError, "loop_blocked(handler, ms)");
    return nullptr;
  }
  double ms = PyFloat_AsDouble(args[1]);
  if (PyErr_Occurred()) return nullptr;
  g_python->LoopBlocked(Utf8(args[0]), ms);
  Py_RETURN_NONE;
}

PyMethodDef g_nativeMethods[] = {
    {"take_async", NativeTakeAsync, METH_NOARGS,
     "The async jobs queued for the event loop, claimed: [(id, key, payload)]."},
    {"finish", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(NativeFinish)), METH_FASTCALL,
     "finish(job_id, ok, value): an async job's outcome (value: result JSON, or describe()'s tuple)."},
    {"loop_blocked", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(NativeLoopBlocked)), METH_FASTCALL,
     "loop_blocked(handler, ms): the event loop was kept from running for ms by this handler."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef g_nativeModule = {PyModuleDef_HEAD_INIT, "weft._native",
                              "The native bridge's side of the event loop (weft internal).", -1, g_nativeMethods};

// Creates weft._native and registers it in sys.modules. Requires the GIL.
bool RegisterNativeModule() {
  Ref mod(PyModule_Create(&g_nativeModule));
  return mod && PyDict_SetItemString(PyImport_GetModuleDict(), "weft._native", mod.get()) == 0;
}

PyObject* Attr(PyObject* mod, const char* name) { return mod ? PyObject_GetAttrString(mod, name) : nullptr; }

// faulthandler for faults on Python's threads: a handler that crashes the
// worker (a C extension's segfault) leaves every Python thread's traceback on
// stderr, naming the handler, before the process dies of the signal. The
// router (FatalSignals) keeps faults on other threads away from it. Requires
// the GIL; without it (no stderr), crashes are only not reported.
void EnableCrashReports() {
  Ref fh(PyImport_ImportModule("faulthandler"));
  Ref done(fh ? PyObject_CallMethod(fh.get(), "enable", nullptr) : nullptr);
  if (!done) {
    PyErr_Clear();
    return;
  }
  for (int sig : FatalSignals::kSignals) {
    struct sigaction installed;
    if (sigaction(sig, nullptr, &installed) == 0) FatalSignals::SetPython(sig, installed);
  }
  FatalSignals::Install();
}

}  // namespace

// A thread of the pool that runs plain `def` handlers.
struct PythonRuntime::Slot {
  uint32_t index = 0;
  NativeThread thread;
  unsigned long ident = 0;  // Python's id of this thread, for PyThreadState_SetAsyncExc
  void* tstate = nullptr;   // its persistent PyThreadState
  std::atomic<uint64_t> runningJob{0};
  JobQueue::Seat seat;
};

void PythonRuntime::ThreadMain() {
  g_python = this;
  FatalSignals::SaveNode();
  FatalSignals::PythonThreads().Add(pthread_self());
  ForeignError err;
  err.kind = ErrorKind::Raised;

  // Pitfall 10: Node dlopen()s addons RTLD_LOCAL, so libpython's symbols
  // are not global and C extension modules (math, _json) fail to load.
  // Promote the already-loaded libpython to RTLD_GLOBAL.
  if (!dlopen(WEFT_PYTHON_SONAME, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) {
    const char* why = dlerror();
    err.errorClass = "PythonInitError";
    err.message = std::string("could not make ") + WEFT_PYTHON_SONAME +
                  " global (dlopen RTLD_NOLOAD|RTLD_GLOBAL): " + (why ? why : "unknown") +
                  "; the addon must be linked against it (rebuild with npm run build:native)";
    ReportLoaded(false, {}, err);
    return;
  }

  // Not in the prototype's findings, found here: the default pre-config
  // coerces a C locale by calling setenv("LC_CTYPE", "C.UTF-8") and
  // setlocale() on the whole process, i.e. it edits Node's environment (and
  // every child's). UTF-8 mode gives Python UTF-8 file names and stdio
  // without touching the process locale or environment.
  PyPreConfig pre;
  PyPreConfig_InitPythonConfig(&pre);
  pre.utf8_mode = 1;
  pre.coerce_c_locale = 0;
  pre.coerce_c_locale_warn = 0;
  pre.configure_locale = 0;
  PyStatus preStatus = Py_PreInitialize(&pre);
  if (PyStatus_Exception(preStatus)) {
    err.errorClass = "PythonInitError";
    err.message =
        std::string("CPython pre-initialisation failed: ") + (preStatus.err_msg ? preStatus.err_msg : "unknown");
    ReportLoaded(false, {}, err);
    return;
  }

  // Pitfall 11: pin the home, or Python searches PATH and may load another
  // installation's stdlib. Pitfall 14: install_signal_handlers = 0.
  std::string home = HomeDir();
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  PyStatus status = PyConfig_SetBytesString(&config, &config.home, home.c_str());
  if (!PyStatus_Exception(status)) {
    std::string exe = home + "/bin/python3";
    status = PyConfig_SetBytesString(&config, &config.program_name, exe.c_str());
  }
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    err.errorClass = "PythonInitError";
    err.message = std::string("CPython failed to start with home ") + home + ": " +
                  (status.err_msg ? status.err_msg : "unknown error") +
                  " (set WEFT_PYTHON_HOME to the prefix of the Python the addon was built with)";
    ReportLoaded(false, {}, err);
    return;
  }

  // Now holding the GIL on Python's main thread.
  loopFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::vector<std::string> handlers;
  bool ok = false;
  {
    PyObject* sysPath = PySys_GetObject("path");  // borrowed
    Ref sdk(PyUnicode_FromString(opts_.sdkDir.c_str()));
    if (loopFd_ < 0) {
      PyErr_SetFromErrno(PyExc_OSError);
    } else if (RegisterNativeModule() && sysPath && sdk && PyList_Insert(sysPath, 0, sdk.get()) == 0) {
      Ref weftMod(PyImport_ImportModule("weft"));
      Ref bridgeMod(weftMod ? PyImport_ImportModule("weft._bridge") : nullptr);
      PyObject* b = bridgeMod.get();
      invoke_ = Attr(b, "invoke");
      describe_ = Attr(b, "describe");
      slotStarted_ = Attr(b, "slot_started");
      slotRetired_ = Attr(b, "slot_retired");
      interrupted_ = Attr(b, "interrupted");
      cancelAsync_ = Attr(b, "cancel_async");
      serveLoop_ = Attr(b, "serve_loop");
      timeoutExc_ = Attr(weftMod.get(), "HandlerTimeout");
      cancelExc_ = Attr(weftMod.get(), "Cancelled");
      Ref loader(Attr(b, "load_handlers"));
      Ref asyncKeys(Attr(b, "async_handlers"));
      bool found = invoke_ && describe_ && slotStarted_ && slotRetired_ && interrupted_ && cancelAsync_ && serveLoop_ &&
                   timeoutExc_ && cancelExc_ && loader && asyncKeys;
      Ref dirs(PyList_New(0));
      for (auto& d : opts_.handlerDirs) {
        Ref s(PyUnicode_FromString(d.c_str()));
        if (s) PyList_Append(dirs.get(), s.get());
      }
      Ref setup(PyUnicode_FromString(opts_.setupJson.c_str()));
      Ref keys(found && setup ? PyObject_CallFunctionObjArgs(loader.get(), dirs.get(), setup.get(), nullptr) : nullptr);
      Ref async(keys ? PyObject_CallNoArgs(asyncKeys.get()) : nullptr);
      if (keys && PyList_Check(keys.get()) && async && PyList_Check(async.get())) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys.get()); i++)
          handlers.push_back(Utf8(PyList_GET_ITEM(keys.get(), i)));
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(async.get()); i++)
          asyncKeys_.insert(Utf8(PyList_GET_ITEM(async.get(), i)));
        ok = true;
      }
    }
    if (!ok) err = TakeError(static_cast<PyObject*>(describe_));
    if (ok) EnableCrashReports();
  }
  // Pitfall 12: release the GIL, keeping this thread's state for the loop.
  mainTstate_ = PyEval_SaveThread();
  if (!ok) {
    ReportLoaded(false, {}, err);
    return;  // the interpreter stays idle; dispatches answer not_loaded
  }
  irqThread_.Start("weft-py-irq", 256u << 10, [this] {
    FatalSignals::PythonThreads().Add(pthread_self());
    InterruptLoop();
  });
  {
    std::lock_guard<std::mutex> lock(slotsMu_);
    poolOpen_ = true;
    while (liveThreads_ < wantThreads_) SpawnLocked();
  }
  ReportLoaded(true, std::move(handlers), ForeignError());
  ServeLoop();
}

void PythonRuntime::ServeLoop() {
  for (;;) {
    PyEval_RestoreThread(static_cast<PyThreadState*>(mainTstate_));
    // Runs the event loop; it returns only if the loop itself failed.
    Ref r(PyObject_CallFunction(static_cast<PyObject*>(serveLoop_), "id", loopFd_,
                                double(loopBlockedMs.load(std::memory_order_relaxed))));
    ForeignError e = TakeError(static_cast<PyObject*>(describe_));
    mainTstate_ = PyEval_SaveThread();
    sink_->HandlerEvent(id_, "loop_failed",
                        "the event loop of the async Python handlers stopped (" + e.errorClass + ": " + e.message +
                            "); it starts again in 1 s");
    usleep(1000 * 1000);
  }
}

void PythonRuntime::SetThreads(uint32_t n) {
  std::lock_guard<std::mutex> lock(slotsMu_);
  if (n > wantThreads_) wantThreads_ = n;
  if (!poolOpen_) return;  // the loading thread starts them
  while (liveThreads_ < wantThreads_) SpawnLocked();
}

void PythonRuntime::SpawnLocked() {
  Slot* slot = new Slot();  // leaky, like every thread's state here
  slot->index = uint32_t(slots_.size()) + 1;
  slots_.push_back(slot);
  liveThreads_++;
  stats.threads.store(liveThreads_, std::memory_order_relaxed);
  std::string name = "weft-py-" + std::to_string(slot->index);
  std::string err = slot->thread.Start(name.c_str(), NativeThread::kInterpreterStack, [this, slot] { SlotMain(slot); });
  if (!err.empty()) {
    liveThreads_--;
    stats.threads.store(liveThreads_, std::memory_order_relaxed);
  }
}

void PythonRuntime::ReplaceThread(const JobPtr&) {
  std::lock_guard<std::mutex> lock(slotsMu_);
  liveThreads_--;
  while (liveThreads_ < wantThreads_) SpawnLocked();
}

void PythonRuntime::SetQueueCapacity(size_t c) {
  queue_.SetCapacity(c);
  asyncQueue_.SetCapacity(c);
}

void PythonRuntime::SlotMain(Slot* slot) {
  FatalSignals::PythonThreads().Add(pthread_self());
  // A thread state of its own for its whole life (pitfall 12).
  PyGILState_STATE gil = PyGILState_Ensure();
  slot->ident = PyThread_get_thread_ident();
  Ref named(PyObject_CallFunction(static_cast<PyObject*>(slotStarted_), "I", unsigned(slot->index)));
  PyErr_Clear();
  slot->tstate = PyEval_SaveThread();
  for (;;) {
    JobPtr job;
    if (!NextJob(&job, &slot->seat)) continue;
    if (!BeginJob(job)) continue;
    if (RunJob(slot, job)) break;
  }
  // Its handler was declared stuck and another thread took its place: retire.
  queue_.Leave(&slot->seat);
  PyEval_RestoreThread(static_cast<PyThreadState*>(slot->tstate));
  Ref retired(PyObject_CallNoArgs(static_cast<PyObject*>(slotRetired_)));
  PyErr_Clear();
  PyGILState_Release(gil);  // deletes this thread's state
  FatalSignals::PythonThreads().Remove(pthread_self());
}

bool PythonRuntime::RunJob(Slot* slot, const JobPtr& job) {
  PyEval_RestoreThread(static_cast<PyThreadState*>(slot->tstate));
  // The handler's run counts from here: a wait for the GIL is queue time, not
  // its run time, which decides whether its jobs are short (JobQueue). Its
  // timeout was set from BeginJob's start and stays.
  job->startNs = NowNs();
  slot->runningJob.store(job->id);
  // Cancelled between BeginJob and here: the interrupt thread may have
  // looked for this job before it was running, so do not start it at all.
  // (seq_cst store then load: either this sees the claim, or the interrupt
  // thread, which takes the GIL after the claim, sees runningJob.)
  if (job->state.load() != kRunning) {
    slot->runningJob.store(0);
    slot->tstate = PyEval_SaveThread();
    std::string().swap(job->payload);
    return HandlerReturned(job);
  }
  bool ok = false;
  std::string json;
  ForeignError err;
  {
    Ref key(PyUnicode_FromStringAndSize(job->handler.data(), Py_ssize_t(job->handler.size())));
    Ref payload(key ? PyUnicode_FromStringAndSize(job->payload.data(), Py_ssize_t(job->payload.size())) : nullptr);
    std::string().swap(job->payload);  // a 10 MB context should not live twice
    Ref result(payload
                   ? PyObject_CallFunctionObjArgs(static_cast<PyObject*>(invoke_), key.get(), payload.get(), nullptr)
                   : nullptr);
    // The job is over as far as interrupts go: stop targeting it and drop a
    // timeout that arrived too late to matter, before anything else runs.
    slot->runningJob.store(0, std::memory_order_release);
    PyThreadState_SetAsyncExc(slot->ident, nullptr);
    if (result && PyUnicode_Check(result.get())) {
      Py_ssize_t n = 0;
      const char* s = PyUnicode_AsUTF8AndSize(result.get(), &n);
      if (s) {
        json.assign(s, size_t(n));
        ok = true;
      }
    }
    if (!ok) err = TakeError(static_cast<PyObject*>(describe_));
  }
  slot->tstate = PyEval_SaveThread();
  return FinishJob(job, ok, std::move(json), std::move(err));
}

bool PythonRuntime::Push(const JobPtr& job) {
  if (asyncKeys_.count(job->handler) == 0) return queue_.TryPush(job);
  job->async = true;
  if (!asyncQueue_.TryPush(job)) return false;
  // One wake-up per batch: the loop takes everything queued when it wakes.
  if (!loopWakePending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    ssize_t w = write(loopFd_, &one, sizeof one);
    (void)w;  // only EAGAIN (the counter is full, so the loop is awake anyway)
  }
  return true;
}

bool PythonRuntime::Unqueue(const Job* job) { return job->async ? asyncQueue_.Remove(job) : queue_.Remove(job); }

std::vector<JobPtr> PythonRuntime::DrainQueued() {
  std::vector<JobPtr> all = queue_.Drain();
  for (auto& j : asyncQueue_.Drain()) all.push_back(std::move(j));
  return all;
}

void* PythonRuntime::TakeAsync() {
  // Cleared before taking: a push after this point writes the eventfd again.
  loopWakePending_.store(false, std::memory_order_release);
  std::vector<JobPtr> jobs = asyncQueue_.Drain();
  PyObject* out = PyList_New(0);
  if (!out) return nullptr;
  for (auto& job : jobs) {
    if (!BeginJob(job)) continue;  // cancelled while queued
    Ref item(Py_BuildValue("(Ks#s#)", (unsigned long long)job->id, job->handler.data(), Py_ssize_t(job->handler.size()),
                           job->payload.data(), Py_ssize_t(job->payload.size())));
    std::string().swap(job->payload);
    if (!item || PyList_Append(out, item.get()) != 0) {
      ForeignError e = TakeError(static_cast<PyObject*>(describe_));
      FinishJob(job, false, std::string(), std::move(e));
      continue;
    }
    asyncJobs_[job->id] = job;
  }
  return out;
}

void PythonRuntime::FinishAsync(uint64_t id, bool ok, void* value) {
  auto it = asyncJobs_.find(id);
  if (it == asyncJobs_.end()) return;
  JobPtr job = std::move(it->second);
  asyncJobs_.erase(it);
  PyObject* v = static_cast<PyObject*>(value);
  std::string json;
  ForeignError err;
  if (ok && PyUnicode_Check(v)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s) {
      json.assign(s, size_t(n));
    } else {
      ok = false;
      err = TakeError(static_cast<PyObject*>(describe_));
    }
  } else if (!FromDescription(v, &err)) {
    ok = false;
    err.kind = ErrorKind::Raised;
    err.errorClass = "BridgeError";
    err.message = "an async handler's outcome came back in a form the bridge does not know";
  }
  FinishJob(job, ok, std::move(json), std::move(err));
}

void PythonRuntime::LoopBlocked(const std::string& handler, double ms) {
  stats.loopBlocked.fetch_add(1, std::memory_order_relaxed);
  uint64_t us = ms > 0 ? uint64_t(ms * 1000) : 0;
  uint64_t seen = stats.loopMaxLagUs.load(std::memory_order_relaxed);
  while (us > seen && !stats.loopMaxLagUs.compare_exchange_weak(seen, us)) {
  }
  std::string who = handler.empty() ? std::string("no handler's task was running (weft's own code, or a callback)")
                                    : "handler \"" + handler + "\"";
  sink_->HandlerEvent(
      id_, "loop_blocked",
      "the event loop of the async Python handlers was blocked for " + std::to_string(int64_t(ms)) + " ms by " + who +
          ": an async def handler called something that blocks (time.sleep, a synchronous HTTP client or driver, "
          "heavy computation), so every other async handler waited. Use await asyncio.sleep() and asyncio-based "
          "clients, or make it a plain def handler (those run on threads of their own)");
}

void PythonRuntime::Interrupt(uint64_t jobId, Reason why) {
  {
    std::lock_guard<std::mutex> lock(irqMu_);
    irqRequests_.emplace_back(jobId, why);
  }
  irqCv_.notify_one();
}

void PythonRuntime::InterruptLoop() {
  for (;;) {
    std::deque<std::pair<uint64_t, Reason>> batch;
    {
      std::unique_lock<std::mutex> lock(irqMu_);
      irqCv_.wait(lock, [this] { return !irqRequests_.empty(); });
      batch.swap(irqRequests_);
    }
    // Waits for the GIL (up to the 5 ms switch interval while Python code
    // runs); this thread exists so that wait never delays the watchdog.
    PyGILState_STATE g = PyGILState_Ensure();
    for (auto& [want, why] : batch) {
      PyObject* exc = why == Reason::kCancel ? static_cast<PyObject*>(cancelExc_) : static_cast<PyObject*>(timeoutExc_);
      unsigned long ident = 0;
      {
        std::lock_guard<std::mutex> lock(slotsMu_);
        for (Slot* s : slots_) {
          if (s->runningJob.load(std::memory_order_acquire) == want) {
            ident = s->ident;
            break;
          }
        }
      }
      if (ident != 0) {
        // Only this thread: the others keep running their handlers.
        if (PyThreadState_SetAsyncExc(ident, exc) == 1) {
          Ref r(PyObject_CallFunction(static_cast<PyObject*>(interrupted_), "k", ident));
          PyErr_Clear();
        }
      } else if (asyncJobs_.count(want)) {
        Ref r(PyObject_CallFunction(static_cast<PyObject*>(cancelAsync_), "Ks", (unsigned long long)want,
                                    why == Reason::kCancel ? "cancel" : "timeout"));
        PyErr_Clear();
      }
    }
    PyGILState_Release(g);
  }
}

}  // namespace weft
