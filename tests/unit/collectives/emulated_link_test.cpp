// The link emulator over the backend's real TCP transport: two ranks in two threads of this process
// on the loopback. While a receive waits for its emulated arrival time, the rank's other posted
// transfers must keep moving (on a link no faster than the emulated one, a wait that stalls them
// adds the real transfer to the emulated delay); and a wait for a moment never ends before it.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "collectives/algorithms/emulated_link.h"
#include "collectives/algorithms/steady_wait.h"
#include "collectives/tcp/tcp_transport.h"

namespace clusterctl::collectives {
namespace {

// The bootstrap all-gather of two ranks that are threads of one process.
class ThreadAllGather {
 public:
  TcpTransport::AllGather for_rank(int rank) {
    return [this, rank](const void* mine, size_t bytes, void* all) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        cards_.resize(2 * bytes);
        std::memcpy(cards_.data() + rank * bytes, mine, bytes);
      }
      both_.arrive_and_wait();
      std::memcpy(all, cards_.data(), 2 * bytes);
      both_.arrive_and_wait();
    };
  }

 private:
  std::mutex mu_;
  std::vector<char> cards_;
  std::barrier<> both_{2};
};

// What each rank's emulated link counted (Transport::emulated_arrivals, emulated_late_arrivals)
// and what rank 1 received.
struct OneWayRun {
  uint64_t arrivals[2] = {}, late[2] = {};
  std::vector<char> received;
};

// Two ranks over the loopback, rank r behind the emulated link `links[r]`, streamed: rank 0 sends
// `big` bytes of 'x' to rank 1, rank 1 sends 8 bytes back, each posting its receive first.
// `woke(r)` runs when rank r's receive has waited out its arrival time.
OneWayRun big_there_word_back(size_t big, const char* const links[2], const std::function<void(int)>& woke) {
  ThreadAllGather gather;
  OneWayRun run;
  run.received.assign(big, 0);
  std::vector<char> out(big, 'x');
  auto rank = [&](int r) {
    TcpTransport tcp(r, 2, "localhost", "127.0.0.1/8", 10, gather.for_rank(r));
    EmulatedLinkTransport link(tcp, parse_link_spec(links[r]));
    int64_t word = 42;
    link.begin_stream();
    const size_t h = r == 0 ? link.post_recv({1, &word, sizeof word}) : link.post_recv({0, run.received.data(), big});
    if (r == 0)
      link.post_send({1, out.data(), big});
    else
      link.post_send({0, &word, sizeof word});
    link.wait_recv(h);
    woke(r);
    link.wait_all();
    run.arrivals[r] = link.emulated_arrivals, run.late[r] = link.emulated_late_arrivals;
  };
  std::thread one(rank, 1);
  rank(0);
  one.join();
  return run;
}

TEST(EmulatedLink, WaitingForAnArrivalTimeKeepsThisRanksSendsMoving) {
  // Rank 1's outgoing link has 3 s of latency, rank 0's none. Rank 0 posts 128 MiB to rank 1 (far
  // more than the kernel's socket buffers hold: tcp_wmem + tcp_rmem at most 36 MiB by default) and
  // then waits for rank 1's 8 bytes, which arrive 3 s after they left. Rank 1 has the 128 MiB before
  // that wait ends only if rank 0 kept sending during it.
  const size_t big = size_t(128) << 20;
  const char* const links[2] = {"latency=0us,bandwidth=100gbit", "latency=3s,bandwidth=100gbit"};
  std::atomic<bool> rank1_has_it{false};
  bool rank1_had_it_when_rank0_woke = false;
  const OneWayRun run = big_there_word_back(big, links, [&](int r) {
    if (r == 0)
      rank1_had_it_when_rank0_woke = rank1_has_it.load();
    else
      rank1_has_it = true;
  });
  EXPECT_TRUE(rank1_had_it_when_rank0_woke);
  EXPECT_EQ(run.received, std::vector<char>(big, 'x'));
}

TEST(EmulatedLink, CountsTheArrivalsThisMachineMadeLate) {
  // Rank 0 sends 64 MiB over an emulated 1000 Tbit/s link with no latency (no real transfer comes
  // that fast: rank 1's receive is late) and rank 1 sends 8 bytes with 1 s of latency (they are
  // there long before: on time).
  const char* const links[2] = {"latency=0us,bandwidth=1000000gbit", "latency=1s,bandwidth=100gbit"};
  const OneWayRun run = big_there_word_back(size_t(64) << 20, links, [](int) {});
  EXPECT_EQ(run.arrivals[0], 1u);
  EXPECT_EQ(run.late[0], 0u);
  EXPECT_EQ(run.arrivals[1], 1u);
  EXPECT_EQ(run.late[1], 1u);
}

TEST(SteadyWait, NeverReturnsBeforeItsMoment) {
  for (int64_t ahead : {-1'000'000, 0, 1'000, 20'000, 45'000, 200'000, 1'500'000}) {
    const int64_t t = steady_now_ns() + ahead;
    sleep_until_steady_ns(t);
    EXPECT_GE(steady_now_ns(), t) << ahead;
    pollfd none{-1, 0, 0};
    EXPECT_EQ(poll_until_steady_ns(&none, 0, steady_now_ns() + ahead), 0);  // a timeout, not an error
  }
}

}  // namespace
}  // namespace clusterctl::collectives
