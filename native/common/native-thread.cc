#include "common/native-thread.h"

#include <cstring>

namespace weft {

namespace {
struct StartArgs {
  std::function<void()> fn;
  std::string name;
};
}  // namespace

void* NativeThread::Trampoline(void* arg) {
  StartArgs* a = static_cast<StartArgs*>(arg);
  pthread_setname_np(pthread_self(), a->name.substr(0, 15).c_str());
  std::function<void()> fn = std::move(a->fn);
  delete a;
  fn();
  return nullptr;
}

std::string NativeThread::Start(const char* name, size_t stackBytes, std::function<void()> fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  int rc = pthread_attr_setstacksize(&attr, stackBytes);
  if (rc != 0) {
    pthread_attr_destroy(&attr);
    return std::string("pthread_attr_setstacksize failed: ") + strerror(rc);
  }
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  StartArgs* a = new StartArgs{std::move(fn), name};
  rc = pthread_create(&thread_, &attr, Trampoline, a);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete a;
    return std::string("pthread_create failed: ") + strerror(rc);
  }
  started_ = true;
  return "";
}

}  // namespace weft
