#pragma once
// A link emulator for the all-reduce algorithms (this kernel has no netem): each message is held
// back as a link of the given latency and bandwidth would hold it. A sender's messages leave one
// after another at `bandwidth` (its link is busy for bytes / bandwidth each) and arrive `latency`
// (+ a uniform random 0..jitter) after they left; an exchange ends when this rank's sends have left
// and its receives have arrived. The arrival time travels with each message (8 bytes, its own
// transfer), read on the steady clock (steady_wait.h): the ranks must share one clock, as processes on one machine
// (or the test cluster's containers on one kernel) do. Everything it prints says "emulated".
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "collectives/algorithms/allreduce.h"

namespace clusterctl::collectives {

struct LinkSpec {
  double latency_s = 0;
  double bandwidth_bytes_per_s = 0;  // 0: unlimited
  double jitter_s = 0;
  std::string text;  // as given, normalised
};

// "latency=300us,bandwidth=10gbit[,jitter=20us]": times in ns|us|ms|s, bandwidth in
// kbit|mbit|gbit (per second, decimal) or kbyte|mbyte|gbyte. Throws CollectiveError naming the
// part that is wrong and the form expected.
LinkSpec parse_link_spec(std::string_view text);
// "emulated link: latency 300 us, bandwidth 10 Gbit/s, jitter 0 us"
std::string describe(const LinkSpec& link);

class EmulatedLinkTransport final : public Transport {
 public:
  EmulatedLinkTransport(Transport& inner, const LinkSpec& link);
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void exchange(std::span<const Transfer> sends, std::span<const Transfer> recvs) override;
  // Streaming over a streaming transport: each send is stamped as it is posted, each receive
  // waits for its own stamp while the inner transport keeps the other transfers moving.
  bool streams() const override { return inner_.streams(); }
  void begin_stream() override;
  void post_send(const Transfer& t) override;
  size_t post_recv(const Transfer& t) override;
  void wait_recv(size_t handle) override;
  void wait_all() override;

 private:
  Transport& inner_;
  LinkSpec link_;
  int64_t link_free_ns_ = 0;  // when this rank's outgoing link has sent everything queued so far
  std::mt19937_64 rng_;
  std::deque<int64_t> send_stamps_, recv_stamps_;  // a deque: the posted stamps must not move
  std::vector<size_t> recv_inner_;                 // our receive handle -> the inner one
};

}  // namespace clusterctl::collectives
