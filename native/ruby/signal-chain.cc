#include "ruby/signal-chain.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <ctime>

#include "common/fatal-signals.h"
#include "common/native-thread.h"

namespace weft {

namespace {

struct sigaction g_saved[NSIG];
struct sigaction g_ruby[NSIG];
bool g_have[NSIG];

struct sigaction g_rubyChld;
struct sigaction g_otherChld[2];
std::atomic<int> g_otherIdx{0};
std::atomic<bool> g_installed{false};
std::atomic<unsigned long> g_reinstalls{0};
NativeThread* g_guard = nullptr;

void Forward(int sig, siginfo_t* info, void* ctx, const struct sigaction& to) {
  if (to.sa_flags & SA_SIGINFO) {
    if (to.sa_sigaction) to.sa_sigaction(sig, info, ctx);
    return;
  }
  if (to.sa_handler == SIG_IGN || to.sa_handler == SIG_DFL) return;
  to.sa_handler(sig);
}

void ChldChain(int sig, siginfo_t* info, void* ctx) {
  int savedErrno = errno;
  Forward(sig, info, ctx, g_rubyChld);
  const struct sigaction& other = g_otherChld[g_otherIdx.load(std::memory_order_acquire)];
  Forward(sig, info, ctx, other);
  errno = savedErrno;
}

void InstallChldChain() {
  struct sigaction act = {};
  act.sa_sigaction = ChldChain;
  act.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
  sigemptyset(&act.sa_mask);
  sigaction(SIGCHLD, &act, nullptr);
}

bool IsChain(const struct sigaction& a) { return (a.sa_flags & SA_SIGINFO) && a.sa_sigaction == ChldChain; }

void GuardLoop() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // never run handlers on this thread
  for (;;) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, nullptr);
    struct sigaction cur;
    if (sigaction(SIGCHLD, nullptr, &cur) != 0 || IsChain(cur)) continue;
    int next = 1 - g_otherIdx.load(std::memory_order_relaxed);
    g_otherChld[next] = cur;
    g_otherIdx.store(next, std::memory_order_release);
    InstallChldChain();
    g_reinstalls.fetch_add(1, std::memory_order_relaxed);
    kill(getpid(), SIGCHLD);
  }
}

}  // namespace

void SignalChain::SaveBeforeRuby() {
  FatalSignals::SaveNode();
  for (int s = 1; s < NSIG; s++) {
    g_have[s] = sigaction(s, nullptr, &g_saved[s]) == 0;
  }
}

void SignalChain::RestoreAfterRuby(pthread_t rubyThread) {
  FatalSignals::RubyThreads().Add(rubyThread);
  for (int s = 1; s < NSIG; s++) {
    if (!g_have[s] || s == SIGKILL || s == SIGSTOP) continue;
    sigaction(s, nullptr, &g_ruby[s]);
    if (s == SIGVTALRM) continue;  // Ruby's thread wake-ups
    sigaction(s, &g_saved[s], nullptr);
  }

  // Faults on Ruby's threads go to Ruby's SIGSEGV handler; the other fault
  // signals keep the handlers restored above for every thread.
  FatalSignals::SetRuby(SIGSEGV, g_ruby[SIGSEGV]);
  FatalSignals::Install();

  g_rubyChld = g_ruby[SIGCHLD];
  struct sigaction cur;
  sigaction(SIGCHLD, nullptr, &cur);
  g_otherChld[0] = cur;
  g_otherIdx.store(0);
  InstallChldChain();
  g_installed.store(true);

  g_guard = new NativeThread();  // leaky: runs until the process ends
  g_guard->Start("weft-sigchld", 64u << 10, GuardLoop);
}

void SignalChain::AddRubyThread(pthread_t t) { FatalSignals::RubyThreads().Add(t); }
void SignalChain::RemoveRubyThread(pthread_t t) { FatalSignals::RubyThreads().Remove(t); }

bool SignalChain::installed() { return g_installed.load(); }
unsigned long SignalChain::reinstalls() { return g_reinstalls.load(); }

}  // namespace weft
