#pragma once
// The backend's own TCP transport for the all-reduce algorithms (as MLX's ring backend has one):
// a full mesh of TCP sockets between the ranks, set up once per communicator. Every rank listens
// on the cluster link's address (the network `up` pins MPI to: btl_tcp_if_include), the ranks
// swap their addresses over the job's bootstrap (an all-gather the backend supplies: MPI's), then
// each rank connects to every lower rank and accepts every higher one. Sockets are TCP_NODELAY
// and non-blocking; an exchange moves the bytes straight between the callers' buffers and the
// kernel's socket buffers (no queue of our own), spinning briefly while data flows and then
// blocking in poll(), so a waiting rank uses no CPU. Ranks that cannot connect within the setup
// timeout end the job with one message naming the ranks, hosts and addresses; a peer that goes
// away later ends it with one CollectiveError naming both ranks, their hosts and addresses.
#include <poll.h>
#include <cstddef>
#include <cstdint>

#include <functional>
#include <string>
#include <vector>

#include "collectives/algorithms/allreduce.h"

namespace clusterctl::collectives {

// Which of this host's IPv4 addresses the transport listens on, and what chose it: `spec` is a
// comma-separated list of CIDRs (10.77.2.0/24) or interface names (tb0), as Open MPI's
// btl_tcp_if_include takes (network_address.h); empty: $CLUSTERCTL_TCP_IF, else
// $OMPI_MCA_btl_tcp_if_include (mpirun sets it from `up`'s --mca), else the first non-loopback
// IPv4 address, else 127.0.0.1. Throws CollectiveError for a spec that is not well formed or
// matches none of this host's addresses (listing them).
struct ListenAddress {
  std::string ip;      // "10.77.2.1"
  std::string source;  // "--tcp-interface tb0", "btl_tcp_if_include 10.77.2.0/24", ...
};
ListenAddress tcp_listen_address(const std::string& spec, const std::string& host);

// How long the ranks may take to connect the mesh before the job is refused: every rank then
// reports which rank could not reach which (one message, the same on every rank).
constexpr double kDefaultTcpSetupTimeoutS = 5;

class TcpTransport final : public Transport {
 public:
  // Every rank of the job calls all_gather(mine, bytes, all) at once; `all` receives size*bytes
  // in rank order.
  using AllGather = std::function<void(const void* mine, size_t bytes, void* all)>;
  // Collective: binds, swaps addresses, connects the mesh within `setup_timeout_s`. A rank that
  // cannot listen or a pair of ranks that cannot connect ends it on every rank with the same
  // JobWideCollectiveError naming the ranks, hosts and addresses and what to change.
  TcpTransport(int rank, int size, const std::string& host, const std::string& interface_spec, double setup_timeout_s,
               const AllGather& all_gather);
  ~TcpTransport() override;
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void exchange(std::span<const Transfer> sends, std::span<const Transfer> recvs) override;
  bool streams() const override { return true; }
  void begin_stream() override;
  void post_send(const Transfer& t) override;
  size_t post_recv(const Transfer& t) override;
  void wait_recv(size_t handle) override;
  void wait_all() override;
  // Moves bytes until the moment, blocking in ppoll() while none can move.
  void keep_moving_until(int64_t steady_ns) override;
  // How long a wait retries its sockets after the last byte moved before blocking in poll():
  // kDefaultSpinNs where the ranks fit the cores, 0 where they share them (wait_policy.h).
  // $CLUSTERCTL_TCP_SPIN_US, for measuring, overrides it.
  static constexpr int64_t kDefaultSpinNs = 1'000'000;
  void set_spin_ns(int64_t ns);
  int64_t spin_ns() const { return spin_ns_; }
  // "tcp 10.77.2.1:41234": where this rank listens.
  const std::string& address() const { return address_; }

 private:
  struct Peer {
    int fd = -1;
    std::string name;  // "rank R on HOST (IP:PORT)"
  };
  [[noreturn]] void fail(int peer, const char* what, int err) const;
  bool try_send(int peer);  // one non-blocking send() of the peer's first unfinished send
  template <class Done>
  void progress_until(const Done& done);
  bool move_bytes();       // one non-blocking pass over every peer with work; whether any byte moved
  void watched_sockets();  // fds_: every peer's socket with work, for what it waits
  int rank_ = 0, size_ = 1;
  int64_t spin_ns_ = kDefaultSpinNs;
  std::string host_, address_;
  std::vector<Peer> peers_;
  // Per exchange, reused: each peer's sends and receives in posted order.
  struct Pending {
    char* p;
    size_t left;
  };
  std::vector<std::vector<Pending>> sendq_, recvq_;
  std::vector<size_t> send_at_, recv_at_;             // each peer's first unfinished transfer
  std::vector<std::pair<int, size_t>> recv_handles_;  // post_recv's handle -> (peer, index)
  size_t open_ = 0;                                   // transfers not finished
  std::vector<pollfd> fds_;
};

}  // namespace clusterctl::collectives
