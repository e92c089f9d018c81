#pragma once
// A heartbeat between the ranks of a serving job over the cluster link, beside MPI. A node whose
// link goes down (or that is cut off, powered off, or whose rank is stopped) closes no connection:
// MPI then waits inside a collective call for minutes. Here every rank sends a small UDP datagram
// from its address on the link each interval (rank 0 to every rank, the others to rank 0) on a
// thread of its own, so a silent peer is noticed within `timeout_s` whatever the ranks compute.
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "collectives/communicator.h"

namespace clusterctl::parallel {

struct HeartbeatOptions {
  std::string link_cidr;  // the network the ranks talk over ("10.77.2.0/24"); each rank's address in it
  double interval_s = 1;  // between datagrams
  double timeout_s = 6;   // a peer silent this long is lost
};

// Which peers fell silent: rank 0 hears every rank, the others hear rank 0.
struct SilentPeers {
  std::vector<int> ranks;              // silent for timeout_s or more, in rank order
  std::vector<std::string> addresses;  // their link addresses, same order
  double seconds = 0;                  // how long the first of them has been silent
  bool all_peers = false;              // every peer of this rank is silent: likely this node's own link
};

// "10.77.2.0/24" -> this machine's IPv4 address in that network ("" when it has none). Throws
// clusterctl::Error when `cidr` is not a CIDR.
std::string local_address_in(const std::string& cidr);

class Heartbeat {
 public:
  using LostFn = std::function<void(const SilentPeers&)>;
  // Collective: every rank calls it at the same point of the job. Each opens its socket on its
  // link address, all agree (parallel::agree: one rank without an address refuses the job), and
  // the addresses are exchanged. `on_lost` runs once, on the heartbeat's thread.
  Heartbeat(collectives::Communicator& comm, const std::string& host, const HeartbeatOptions& options, LostFn on_lost);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

 private:
  void run();

  int rank_ = 0, size_ = 1;
  HeartbeatOptions options_;
  LostFn on_lost_;
  int fd_ = -1;
  uint64_t job_ = 0;                 // rank 0's random number: datagrams of another job are ignored
  std::vector<uint32_t> addresses_;  // network order, by rank
  std::vector<uint16_t> ports_;      // network order, by rank
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace clusterctl::parallel
