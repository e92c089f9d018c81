#pragma once
// Waiting for a moment on the steady clock, on time and without spinning a core: the link
// emulator's arrival stamps (emulated_link.h) are compared across processes, and a late wake-up
// adds straight to every emulated hop. On Linux the clock is CLOCK_MONOTONIC (what
// std::chrono::steady_clock reads under glibc, and what clock_nanosleep and ppoll time against)
// and a waiting thread's timer slack is set to 1 ns: with the default 50 us slack a sleeping thread
// wakes ~75 us late, with 1 ns ~20 us late (p90 under 30 us on a loaded 2-vCPU VM).
#include <poll.h>

#include <cstdint>

namespace clusterctl::collectives {

int64_t steady_now_ns();
// How long before its moment a kernel wait ends, so that the rest is spun and the moment met
// (Linux: 30 us, a wake-up's p90 with 1 ns slack; elsewhere 80 us, the old sleep_for rule).
int64_t wake_margin_ns();
// Sleeps in the kernel until wake_margin_ns() before `t` (CLOCK_MONOTONIC, absolute, on Linux),
// then spins to `t`. Never returns before the steady clock reads `t`.
void sleep_until_steady_ns(int64_t t);
// poll() on `fds` for at most until wake_margin_ns() before `t`; returns poll's result, and 0 at
// once when that moment has passed (the caller spins the rest). ppoll's nanoseconds on Linux;
// elsewhere poll's whole milliseconds, and under one a plain sleep (no socket is watched then).
int poll_until_steady_ns(pollfd* fds, nfds_t n, int64_t t);

}  // namespace clusterctl::collectives
