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
  if (!queue_.TryPush(job)) return kQueueFull;
  // MarkBroken may have drained the queue between the check and the push;
  // drain again so nothing waits on a thread that will never serve it.
  if (broken()) {
    for (auto& j : queue_.Drain()) {
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
  return kAccepted;
}

bool RuntimeWorker::BeginJob(const JobPtr& job) {
  if (!job->Claim(kQueued, kRunning)) return false;
  job->startNs = NowNs();
  watchdog_->Watch(job, this);
  return true;
}

void RuntimeWorker::FinishJob(const JobPtr& job, bool ok, std::string json, ForeignError error) {
  int64_t end = NowNs();
  job->handlerReturned.store(true, std::memory_order_release);
  if (!job->Claim(kRunning, kFinished)) {
    stats.lateResults.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  job->endNs = end;
  job->ok = ok;
  job->resultJson = std::move(json);
  job->error = std::move(error);
  watchdog_->Unwatch(job.get());
  sink_->Resolve(job);
}

void RuntimeWorker::ReportLoaded(bool ok, std::vector<std::string> handlers, ForeignError error) {
  phase_.store(ok ? kReady : kFailed, std::memory_order_release);
  sink_->Loaded(id_, ok, std::move(handlers), std::move(error));
}

void RuntimeWorker::MarkBroken(const std::string& reason) {
  if (g_marking[int(id_)].exchange(true)) return;
  brokenReason_ = reason;
  broken_.store(true, std::memory_order_release);
  for (auto& j : queue_.Drain()) {
    if (j->Claim(kQueued, kAborted)) {
      j->endNs = NowNs();
      j->error.kind = ErrorKind::RuntimeBroken;
      j->error.errorClass = "RuntimeBroken";
      j->error.message = std::string("the ") + name() + " runtime is broken: " + reason;
      watchdog_->Unwatch(j.get());
      sink_->Resolve(j);
    }
  }
  sink_->Broken(id_, reason);
}

std::string RuntimeWorker::brokenReason() const { return broken() ? brokenReason_ : std::string(); }

}  // namespace weft
