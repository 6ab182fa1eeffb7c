#include "common/fatal-signals.h"

#include <atomic>
#include <mutex>

namespace weft {

namespace {

struct Route {
  struct sigaction node;
  struct sigaction ruby;
  struct sigaction python;
  std::atomic<bool> hasRuby{false};
  std::atomic<bool> hasPython{false};
  // faulthandler dumps once, then raises the signal again: that second
  // delivery must reach Node's handler, not faulthandler a second time.
  std::atomic<bool> pythonDumped{false};
};

Route g_routes[NSIG];
std::atomic<bool> g_saved{false};
std::mutex g_mu;  // start-up only, never in a handler
ThreadRegistry g_ruby;
ThreadRegistry g_python;

void Forward(int sig, siginfo_t* info, void* ctx, const struct sigaction& to) {
  if (to.sa_flags & SA_SIGINFO) {
    if (to.sa_sigaction) to.sa_sigaction(sig, info, ctx);
    return;
  }
  if (to.sa_handler == SIG_IGN) return;
  if (to.sa_handler == SIG_DFL) {
    // Let the faulting instruction run again under the default action (core dump).
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    return;
  }
  to.sa_handler(sig);
}

void Router(int sig, siginfo_t* info, void* ctx) {
  Route& r = g_routes[sig];
  pthread_t self = pthread_self();
  if (r.hasRuby.load(std::memory_order_acquire) && g_ruby.Contains(self)) {
    Forward(sig, info, ctx, r.ruby);
  } else if (r.hasPython.load(std::memory_order_acquire) && g_python.Contains(self) &&
             !r.pythonDumped.exchange(true, std::memory_order_acq_rel)) {
    Forward(sig, info, ctx, r.python);
  } else {
    Forward(sig, info, ctx, r.node);
  }
}

}  // namespace

void FatalSignals::SaveNode() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_saved.exchange(true)) return;
  for (int sig : kSignals) sigaction(sig, nullptr, &g_routes[sig].node);
}

void FatalSignals::SetRuby(int sig, const struct sigaction& handler) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_routes[sig].ruby = handler;
  g_routes[sig].hasRuby.store(true, std::memory_order_release);
}

void FatalSignals::SetPython(int sig, const struct sigaction& handler) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_routes[sig].python = handler;
  g_routes[sig].hasPython.store(true, std::memory_order_release);
}

void FatalSignals::Install() {
  std::lock_guard<std::mutex> lock(g_mu);
  for (int sig : kSignals) {
    struct sigaction act = {};
    act.sa_sigaction = Router;
    // SA_ONSTACK: a stack overflow still finds a stack to run on where one
    // is set up; SA_NODEFER: a handler that raises again is called at once.
    act.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&act.sa_mask);
    sigaction(sig, &act, nullptr);
  }
}

ThreadRegistry& FatalSignals::RubyThreads() { return g_ruby; }
ThreadRegistry& FatalSignals::PythonThreads() { return g_python; }

}  // namespace weft
