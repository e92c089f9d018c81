#include "worker/parallel/heartbeat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>

#include "collectives/error.h"
#include "collectives/network_address.h"
#include "worker/common/error.h"
#include "worker/parallel/job.h"

namespace clusterctl::parallel {
namespace {

using Clock = std::chrono::steady_clock;

struct Beat {
  static constexpr uint32_t kMagic = 0x54414542;  // "BEAT"
  uint32_t magic = kMagic;
  int32_t rank = 0;
  uint64_t job = 0;
};

// Where a rank's socket is: its link address and port, both in network order.
struct Endpoint {
  uint32_t address = 0;
  uint16_t port = 0;
  uint16_t unused = 0;
};

}  // namespace

std::string local_address_in(const std::string& cidr) {
  // A network, not an interface name or a bare address: every node has its own address in it.
  if (cidr.find('/') == std::string::npos || !collectives::parse_ipv4_network(cidr))
    throw Error("--heartbeat-link '" + cidr + "' is not an IPv4 network like 10.0.0.0/24");
  try {
    return collectives::address_matching(cidr, collectives::local_ipv4_addresses(), "--heartbeat-link");
  } catch (const collectives::CollectiveError& e) {
    throw Error(e.what());
  }
}

Heartbeat::Heartbeat(collectives::Communicator& comm, const std::string& host, const HeartbeatOptions& options,
                     LostFn on_lost)
    : rank_(comm.rank()), size_(comm.size()), options_(options), on_lost_(std::move(on_lost)) {
  Endpoint mine;
  std::string error;
  try {
    const std::string address = local_address_in(options_.link_cidr);
    if (address.empty())
      throw Error("this node has no address in " + options_.link_cidr +
                  " (the cluster link); bring its link up, or fix the link in the cluster file");
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw Error(std::string("cannot open the heartbeat socket: ") + std::strerror(errno));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw Error("cannot open the heartbeat socket on " + address + ": " + std::strerror(errno));
    mine.address = a.sin_addr.s_addr;
    mine.port = a.sin_port;
  } catch (const std::exception& e) {
    error = e.what();
  }
  try {
    agree(comm, host, error);
  } catch (...) {
    if (fd_ >= 0) ::close(fd_);
    throw;
  }
  std::vector<Endpoint> all(static_cast<size_t>(size_));
  comm.gather(&mine, sizeof mine, all.data(), 0);
  comm.broadcast(all.data(), all.size() * sizeof(Endpoint), 0);
  if (rank_ == 0) job_ = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
  comm.broadcast(&job_, sizeof job_, 0);
  for (const Endpoint& e : all) {
    addresses_.push_back(e.address);
    ports_.push_back(e.port);
  }
  thread_ = std::thread([this] { run(); });
}

Heartbeat::~Heartbeat() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

void Heartbeat::run() {
  const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.interval_s));
  const auto timeout = std::chrono::duration<double>(options_.timeout_s);
  std::vector<int> peers;
  for (int r = 0; r < size_; ++r)
    if (r != rank_ && (rank_ == 0 || r == 0)) peers.push_back(r);
  std::vector<Clock::time_point> heard(static_cast<size_t>(size_), Clock::now());
  auto next_send = Clock::now();
  bool reported = false;
  while (!stop_) {
    const auto now = Clock::now();
    if (now >= next_send) {
      Beat b;
      b.rank = rank_;
      b.job = job_;
      for (int p : peers) {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = addresses_[p];
        to.sin_port = ports_[p];
        // A lost link fails here (no route) or drops the datagram: either way the peer hears nothing.
        (void)::sendto(fd_, &b, sizeof b, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&to), sizeof to);
      }
      next_send = now + interval;
    }
    // Short waits: the destructor's stop is seen within 250 ms.
    const auto wait = std::min<Clock::duration>(next_send - Clock::now(), std::chrono::milliseconds(250));
    pollfd pfd{fd_, POLLIN, 0};
    ::poll(&pfd, 1,
           static_cast<int>(
               std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(wait).count() + 1)));
    for (;;) {
      Beat b;
      const ssize_t n = ::recv(fd_, &b, sizeof b, MSG_DONTWAIT);
      if (n < 0) break;
      if (n == sizeof b && b.magic == Beat::kMagic && b.job == job_ && b.rank >= 0 && b.rank < size_)
        heard[static_cast<size_t>(b.rank)] = Clock::now();
    }
    if (reported) continue;
    SilentPeers silent;
    for (int p : peers) {
      const auto quiet = Clock::now() - heard[static_cast<size_t>(p)];
      if (quiet < timeout) continue;
      silent.ranks.push_back(p);
      silent.addresses.push_back(collectives::ipv4_text(addresses_[p]));
      silent.seconds = std::max(silent.seconds, std::chrono::duration<double>(quiet).count());
    }
    if (silent.ranks.empty()) continue;
    silent.all_peers = silent.ranks.size() == peers.size();
    reported = true;
    if (on_lost_) on_lost_(silent);
  }
}

}  // namespace clusterctl::parallel
