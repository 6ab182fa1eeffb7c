// Python.h must come first and must be the only interpreter header in this
// translation unit (bridge-findings pitfall 18).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/python-runtime.h"

#include <dlfcn.h>
#include <signal.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/completion-sink.h"

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
    if (d && PyTuple_Check(d.get()) && PyTuple_GET_SIZE(d.get()) == 5) {
      std::string kind = Utf8(PyTuple_GET_ITEM(d.get(), 0));
      if (kind == "invalid_return")
        err.kind = ErrorKind::InvalidReturn;
      else if (kind == "handler_not_found")
        err.kind = ErrorKind::HandlerNotFound;
      err.errorClass = Utf8(PyTuple_GET_ITEM(d.get(), 1));
      err.message = Utf8(PyTuple_GET_ITEM(d.get(), 2));
      PyObject* bt = PyTuple_GET_ITEM(d.get(), 3);
      if (PyList_Check(bt)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(bt); i++) err.backtrace.push_back(Utf8(PyList_GET_ITEM(bt, i)));
      }
      err.permanent = PyObject_IsTrue(PyTuple_GET_ITEM(d.get(), 4)) == 1;
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

}  // namespace

void PythonRuntime::ThreadMain() {
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
  std::vector<std::string> handlers;
  bool ok = false;
  {
    PyObject* sysPath = PySys_GetObject("path");  // borrowed
    Ref sdk(PyUnicode_FromString(opts_.sdkDir.c_str()));
    if (sysPath && sdk && PyList_Insert(sysPath, 0, sdk.get()) == 0) {
      Ref weftMod(PyImport_ImportModule("weft"));
      Ref bridgeMod(weftMod ? PyImport_ImportModule("weft._bridge") : nullptr);
      if (bridgeMod) {
        invoke_ = PyObject_GetAttrString(bridgeMod.get(), "invoke");
        describe_ = PyObject_GetAttrString(bridgeMod.get(), "describe");
        timeoutExc_ = invoke_ && describe_ ? PyObject_GetAttrString(weftMod.get(), "HandlerTimeout") : nullptr;
        cancelExc_ = timeoutExc_ ? PyObject_GetAttrString(weftMod.get(), "Cancelled") : nullptr;
        Ref loader(cancelExc_ ? PyObject_GetAttrString(bridgeMod.get(), "load_handlers") : nullptr);
        Ref dirs(PyList_New(0));
        for (auto& d : opts_.handlerDirs) {
          Ref s(PyUnicode_FromString(d.c_str()));
          if (s) PyList_Append(dirs.get(), s.get());
        }
        // Before the handlers load, so a handler file's own signal.signal() calls come after it.
        Ref wake(loader ? PyObject_CallMethod(bridgeMod.get(), "install_wake_signal", nullptr) : nullptr);
        if (wake && PyLong_Check(wake.get())) wakeSignal_ = int(PyLong_AsLong(wake.get()));
        PyErr_Clear();  // no wake signal: interrupts still work, only not out of blocking calls
        Ref keys(loader ? PyObject_CallOneArg(loader.get(), dirs.get()) : nullptr);
        if (keys && PyList_Check(keys.get())) {
          for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys.get()); i++)
            handlers.push_back(Utf8(PyList_GET_ITEM(keys.get(), i)));
          ok = true;
        }
      }
    }
    if (!ok) err = TakeError(static_cast<PyObject*>(describe_));
  }
  threadIdent_ = PyThread_get_thread_ident();
  thread_ = pthread_self();
  // Pitfall 12: release the GIL, keeping this thread's state for later jobs.
  tstate_ = PyEval_SaveThread();
  if (!ok) {
    ReportLoaded(false, {}, err);
    return;  // the interpreter stays idle; dispatches answer not_loaded
  }
  irqThread_.Start("weft-py-irq", 256u << 10, [this] { InterruptLoop(); });
  ReportLoaded(true, std::move(handlers), ForeignError());

  for (;;) {
    JobPtr job;
    if (!NextJob(&job)) continue;
    if (!BeginJob(job)) continue;
    RunJob(job);
  }
}

void PythonRuntime::RunJob(const JobPtr& job) {
  PyEval_RestoreThread(static_cast<PyThreadState*>(tstate_));
  runningJob_.store(job->id);
  // Cancelled between BeginJob and here: the interrupt thread may have
  // looked for this job before it was running, so do not start it at all.
  // (seq_cst store then load: either this sees the claim, or the interrupt
  // thread, which takes the GIL after the claim, sees runningJob_.)
  if (job->state.load() != kRunning) {
    runningJob_.store(0);
    tstate_ = PyEval_SaveThread();
    std::string().swap(job->payload);
    job->handlerReturned.store(true, std::memory_order_release);
    return;
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
    runningJob_.store(0, std::memory_order_release);
    PyThreadState_SetAsyncExc(threadIdent_, nullptr);
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
  tstate_ = PyEval_SaveThread();
  FinishJob(job, ok, std::move(json), std::move(err));
}

void PythonRuntime::Interrupt(uint64_t jobId, Reason why) {
  {
    std::lock_guard<std::mutex> lock(irqMu_);
    irqRequest_ = jobId;
    irqReason_ = why;
  }
  irqCv_.notify_one();
}

void PythonRuntime::InterruptLoop() {
  for (;;) {
    uint64_t want;
    Reason why;
    {
      std::unique_lock<std::mutex> lock(irqMu_);
      irqCv_.wait(lock, [this] { return irqRequest_ != 0; });
      want = irqRequest_;
      why = irqReason_;
      irqRequest_ = 0;
    }
    // Waits for the GIL (up to the 5 ms switch interval while Python code
    // runs); this thread exists so that wait never delays the watchdog.
    PyGILState_STATE g = PyGILState_Ensure();
    bool raised = false;
    if (runningJob_.load(std::memory_order_acquire) == want) {
      PyObject* exc = why == Reason::kCancel ? static_cast<PyObject*>(cancelExc_) : static_cast<PyObject*>(timeoutExc_);
      raised = PyThreadState_SetAsyncExc(threadIdent_, exc) == 1;
    }
    PyGILState_Release(g);
    // Wake a blocking call so the exception can be raised out of it. A late
    // signal (the job ended meanwhile) only runs the do-nothing handler.
    if (raised && wakeSignal_ > 0) pthread_kill(thread_, wakeSignal_);
  }
}

}  // namespace weft
