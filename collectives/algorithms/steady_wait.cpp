#include "collectives/algorithms/steady_wait.h"

#include <cerrno>
#include <chrono>
#include <ctime>
#include <thread>

#ifdef __linux__
#include <sys/prctl.h>
#endif

namespace clusterctl::collectives {
namespace {

#ifdef __linux__
// Timer slack is per thread; a thread that waits for stamps sets it once.
void tighten_timer_slack() {
  thread_local const bool done = [] { return prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) == 0; }();
  (void)done;
}
timespec to_timespec(int64_t ns) {
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}
#endif

}  // namespace

int64_t steady_now_ns() {
#ifdef __linux__
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
#else
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
#endif
}

int64_t wake_margin_ns() {
#ifdef __linux__
  return 30'000;
#else
  return 80'000;
#endif
}

void sleep_until_steady_ns(int64_t t) {
  const int64_t wake = t - wake_margin_ns();
  if (wake > steady_now_ns()) {
#ifdef __linux__
    tighten_timer_slack();
    const timespec at = to_timespec(wake);  // absolute
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
    }
#else
    std::this_thread::sleep_for(std::chrono::nanoseconds(wake - steady_now_ns()));
#endif
  }
  while (steady_now_ns() < t) {
  }
}

int poll_until_steady_ns(pollfd* fds, nfds_t n, int64_t t) {
  const int64_t left = t - wake_margin_ns() - steady_now_ns();
  if (left <= 0) return 0;
#ifdef __linux__
  tighten_timer_slack();
  const timespec timeout = to_timespec(left);
  return ::ppoll(fds, n, &timeout, nullptr);
#else
  if (left >= 1'000'000) return ::poll(fds, n, static_cast<int>(left / 1'000'000));
  std::this_thread::sleep_for(std::chrono::nanoseconds(left));  // poll's whole milliseconds would overshoot
  return 0;
#endif
}

}  // namespace clusterctl::collectives
