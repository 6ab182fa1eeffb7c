#include "typescript/typescript-runtime.h"

#include "common/clock.h"
#include "common/completion-sink.h"
#include "common/timeout-watchdog.h"

namespace weft {

void TypescriptRuntime::ThreadMain() {
  ReportLoaded(true, {}, ForeignError());
  for (;;) {
    JobPtr job;
    if (!NextJob(&job)) continue;
    if (!BeginJob(job)) continue;
    sink_->InvokeTypescript(std::move(job));
  }
}

void TypescriptRuntime::Complete(const JobPtr& job, bool ok, std::string json, ForeignError error, bool* resolvedNow) {
  int64_t end = NowNs();
  HandlerReturned(job);  // a JS handler holds no thread: nothing retires
  *resolvedNow = false;
  if (!job->Claim(kRunning, kFinished)) {
    stats.lateResults.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  job->endNs = end;
  job->ok = ok;
  job->resultJson = std::move(json);
  job->error = std::move(error);
  watchdog_->Unwatch(job.get());
  *resolvedNow = true;
}

}  // namespace weft
