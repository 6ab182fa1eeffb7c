#include "common/runtime-worker.h"

#include "common/clock.h"
#include "common/completion-sink.h"
#include "common/timeout-watchdog.h"

namespace weft {

namespace {
std::atomic<bool> g_marking[kRuntimeCount];
}

std::string RuntimeWorker::Start(LoadOptions opts) {
  int expected = kIdle;
  if (!phase_.compare_exchange_strong(expected, kLoading)) {
    return std::string(name()) +
           " is already loaded in this process; an interpreter can be initialised only once per process, "
           "so call load() once per runtime";
  }
  opts_ = std::move(opts);
  size_t stack = id_ == RuntimeId::Typescript ? (256u << 10) : NativeThread::kInterpreterStack;
  std::string threadName = std::string("weft-") + name();
  std::string err = thread_.Start(threadName.c_str(), stack, [this] { ThreadMain(); });
  if (!err.empty()) phase_.store(kFailed);
  return err;
}

RuntimeWorker::Admission RuntimeWorker::Enqueue(const JobPtr& job) {
  if (broken()) return kBrokenRuntime;
  if (phase() != kReady) return kNotReady;
  job->enqueuedNs = NowNs();
  if (!Push(job)) return kQueueFull;
  // MarkBroken may have drained the queues between the check and the push;
  // drain again so nothing waits on a thread that will never serve it.
  if (broken()) AbortQueued();
  return kAccepted;
}

void RuntimeWorker::AbortQueued() {
  for (auto& j : DrainQueued()) {
    if (j->Claim(kQueued, kAborted)) {
      j->endNs = NowNs();
      j->error.kind = ErrorKind::RuntimeBroken;
      j->error.errorClass = "RuntimeBroken";
      j->error.message = std::string("the ") + name() + " runtime is broken: " + brokenReason_;
      watchdog_->Unwatch(j.get());
      sink_->Resolve(j);
    }
  }
}

bool RuntimeWorker::BeginJob(const JobPtr& job) {
  if (!job->Claim(kQueued, kRunning)) return false;
  job->startNs = NowNs();
  stats.running.fetch_add(1, std::memory_order_relaxed);
  watchdog_->Watch(job, this);
  return true;
}

bool RuntimeWorker::HandlerReturned(const JobPtr& job) {
  bool wasStuck = job->MarkReturned();
  stats.running.fetch_sub(1, std::memory_order_relaxed);
  if (wasStuck) {
    stats.stuck.fetch_sub(1, std::memory_order_relaxed);
    sink_->HandlerEvent(id_, "recovered", "handler \"" + job->handler + "\" returned at last; its thread retires");
  }
  return wasStuck;
}

bool RuntimeWorker::FinishJob(const JobPtr& job, bool ok, std::string json, ForeignError error) {
  int64_t end = NowNs();
  bool retire = HandlerReturned(job);
  if (!job->Claim(kRunning, kFinished)) {
    stats.lateResults.fetch_add(1, std::memory_order_relaxed);
    return retire;
  }
  job->endNs = end;
  job->ok = ok;
  job->resultJson = std::move(json);
  job->error = std::move(error);
  watchdog_->Unwatch(job.get());
  sink_->Resolve(job);
  return retire;
}

void RuntimeWorker::HandlerStuck(const JobPtr& job, const std::string& why) {
  if (!job->MarkStuck()) return;  // it came back just now
  uint32_t now = uint32_t(stats.stuck.fetch_add(1, std::memory_order_relaxed) + 1);
  stats.stuckTotal.fetch_add(1, std::memory_order_relaxed);
  uint32_t limit = maxStuck.load(std::memory_order_relaxed);
  if (now >= limit) {
    MarkBroken(why + "; " + std::to_string(now) + " handler" + (now == 1 ? " is" : "s are") +
               " stuck at once (the limit is " + std::to_string(limit) +
               ", WEFT_BRIDGE_MAX_STUCK), so restart this worker process");
    return;
  }
  if (!job->async) ReplaceThread(job);
  sink_->HandlerEvent(
      id_, "stuck",
      why + "; its slot was given up and " +
          (job->async ? std::string("the event loop goes on") : std::string("a new thread took its place")) + " (" +
          std::to_string(now) + " stuck now; at " + std::to_string(limit) +
          " the worker restarts, WEFT_BRIDGE_MAX_STUCK)");
}

void RuntimeWorker::ReportLoaded(bool ok, std::vector<std::string> handlers, ForeignError error) {
  phase_.store(ok ? kReady : kFailed, std::memory_order_release);
  sink_->Loaded(id_, ok, std::move(handlers), std::move(error));
}

void RuntimeWorker::MarkBroken(const std::string& reason) {
  if (g_marking[int(id_)].exchange(true)) return;
  brokenReason_ = reason;
  broken_.store(true, std::memory_order_release);
  AbortQueued();
  sink_->Broken(id_, reason);
}

std::string RuntimeWorker::brokenReason() const { return broken() ? brokenReason_ : std::string(); }

}  // namespace weft
