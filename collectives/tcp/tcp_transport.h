#pragma once
// The backend's own TCP transport for the all-reduce algorithms (as MLX's ring backend has one):
// a full mesh of TCP sockets between the ranks, set up once per communicator. Every rank listens
// on the cluster link's address (the network `up` pins MPI to: btl_tcp_if_include), the ranks
// swap their addresses over the job's bootstrap (an all-gather the backend supplies: MPI's), then
// each rank connects to every lower rank and accepts every higher one. Sockets are TCP_NODELAY
// and non-blocking; an exchange moves the bytes straight between the callers' buffers and the
// kernel's socket buffers (no queue of our own), spinning briefly while data flows and then
// blocking in poll(), so a waiting rank uses no CPU. A peer that goes away or cannot be reached
// ends in one CollectiveError naming both ranks and their hosts.
#include <poll.h>
#include <cstddef>
#include <cstdint>

#include <functional>
#include <string>
#include <vector>

#include "collectives/algorithms/allreduce.h"

namespace clusterctl::collectives {

// Which of this host's IPv4 addresses the transport listens on: `spec` is a comma-separated list
// of CIDRs (10.77.2.0/24) or interface names (tb0), as Open MPI's btl_tcp_if_include takes;
// empty: $CLUSTERCTL_TCP_IF, else $OMPI_MCA_btl_tcp_if_include (mpirun sets it from `up`'s
// --mca), else the first non-loopback IPv4 address, else 127.0.0.1. Throws CollectiveError when
// the spec matches none of this host's addresses (listing them).
std::string tcp_listen_address(const std::string& spec, const std::string& host);

class TcpTransport final : public Transport {
 public:
  // Every rank of the job calls all_gather(mine, bytes, all) at once; `all` receives size*bytes
  // in rank order.
  using AllGather = std::function<void(const void* mine, size_t bytes, void* all)>;
  // Collective: binds, swaps addresses, connects the mesh. Throws CollectiveError naming the rank,
  // host and address that failed, with what to check.
  TcpTransport(int rank, int size, const std::string& host, const std::string& interface_spec,
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
  int rank_ = 0, size_ = 1;
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
