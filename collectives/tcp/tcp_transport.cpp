#include "collectives/tcp/tcp_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>

#include "collectives/communicator.h"
#include "collectives/error.h"

namespace clusterctl::collectives {
namespace {

constexpr uint32_t kMagic = 0x434c5443;  // "CLTC"
constexpr int kSetupTimeoutMs = 30'000;  // connecting and accepting the mesh
// While bytes flow, an exchange retries its sockets without sleeping for this long after the last
// progress (a decode step's messages arrive within it), then blocks in poll().
// $CLUSTERCTL_TCP_SPIN_US overrides it (0: block at once), for measuring.
constexpr int64_t kDefaultSpinNs = 1'000'000;
constexpr size_t kMaxIoBytes = size_t(1) << 20;  // per send()/recv() call, so peers take turns

// What each rank tells the others at the start (all-gathered).
struct Card {
  uint32_t magic;
  uint32_t ip;  // network order
  uint16_t port;
  uint16_t pad;
  uint32_t pad2;
  uint64_t nonce;  // rank 0's: connections carry it, so a stray connection is refused
  char host[64];
};
// What a connecting rank sends first.
struct Hello {
  uint32_t magic;
  int32_t rank;
  uint64_t nonce;
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t spin_ns() {
  static const int64_t ns = [] {
    const char* v = std::getenv("CLUSTERCTL_TCP_SPIN_US");
    if (!v || !*v) return kDefaultSpinNs;
    return std::clamp<int64_t>(std::atoll(v), 0, 1'000'000) * 1000;
  }();
  return ns;
}

std::string ip_text(uint32_t ip_net) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{};
  a.s_addr = ip_net;
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void set_socket_options(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Reads or writes exactly `bytes` on a non-blocking socket within `deadline_ns`; false on
// timeout, closed connection or error (errno set; 0 for a closed connection or timeout).
bool io_all(int fd, void* data, size_t bytes, bool write, int64_t deadline_ns) {
  auto* p = static_cast<char*>(data);
  while (bytes > 0) {
    const ssize_t n = write ? ::send(fd, p, bytes, MSG_NOSIGNAL) : ::recv(fd, p, bytes, 0);
    if (n > 0) {
      p += n, bytes -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return errno = 0, false;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    const int64_t left_ms = (deadline_ns - now_ns()) / 1'000'000;
    if (left_ms <= 0) return errno = 0, false;
    pollfd pfd{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    ::poll(&pfd, 1, static_cast<int>(left_ms));
  }
  return true;
}

bool in_cidr(uint32_t ip_net, const std::string& cidr) {
  const auto slash = cidr.find('/');
  in_addr net{};
  if (inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &net) != 1) return false;
  int bits = 32;
  if (slash != std::string::npos) bits = std::atoi(cidr.c_str() + slash + 1);
  if (bits < 0 || bits > 32) return false;
  const uint32_t mask = bits == 0 ? 0 : ~uint32_t(0) << (32 - bits);
  return (ntohl(ip_net) & mask) == (ntohl(net.s_addr) & mask);
}

}  // namespace

std::string tcp_listen_address(const std::string& spec_in, const std::string& host) {
  std::string spec = spec_in;
  const char* source = "--tcp-interface";
  if (spec.empty())
    if (const char* e = std::getenv("CLUSTERCTL_TCP_IF"); e && *e) spec = e, source = "$CLUSTERCTL_TCP_IF";
  if (spec.empty())
    if (const char* e = std::getenv("OMPI_MCA_btl_tcp_if_include"); e && *e)
      spec = e, source = "btl_tcp_if_include (the cluster link `up` pins MPI to)";
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0)
    throw CollectiveError("tcp transport on " + host + ": cannot list the network interfaces: " + std::strerror(errno));
  std::vector<std::pair<std::string, uint32_t>> addrs;  // (interface, IPv4 in network order), up ones
  for (ifaddrs* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP))
      addrs.push_back({i->ifa_name, reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr});
  freeifaddrs(list);
  if (spec.empty()) {
    for (const auto& [name, ip] : addrs)
      if ((ntohl(ip) >> 24) != 127) return ip_text(ip);
    return "127.0.0.1";
  }
  std::stringstream items(spec);
  for (std::string item; std::getline(items, item, ',');) {
    if (item.empty()) continue;
    for (const auto& a : addrs)
      if (a.first == item || (item.find('.') != std::string::npos && in_cidr(a.second, item))) return ip_text(a.second);
  }
  std::string have;
  for (const auto& a : addrs) have += (have.empty() ? "" : ", ") + a.first + " " + ip_text(a.second);
  throw CollectiveError("tcp transport on " + host + ": " + source + " '" + spec +
                        "' matches none of this host's IPv4 addresses (" + have +
                        "); name the cluster link's network or interface in the cluster file's link, or use "
                        "--transport mpi");
}

TcpTransport::TcpTransport(int rank, int size, const std::string& host, const std::string& interface_spec,
                           const AllGather& all_gather)
    : rank_(rank), size_(size), host_(host), peers_(size), sendq_(size), recvq_(size), send_at_(size), recv_at_(size) {
  const std::string me = rank_name(rank_, host_);
  // Everything up to the all-gather only throws after it: a rank that threw before would leave the
  // others waiting in it. An error is carried in the card (magic 0) and every rank throws.
  std::string setup_error;
  int listener = -1;
  Card card{};
  card.magic = kMagic;
  try {
    const std::string ip = tcp_listen_address(interface_spec, host_);
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
    socklen_t len = sizeof addr;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, size_) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw CollectiveError("tcp transport: " + me + " cannot listen on " + ip + ": " + std::strerror(errno));
    card.ip = addr.sin_addr.s_addr;
    card.port = addr.sin_port;
    card.nonce = std::random_device{}() * 0x100000001ull + static_cast<uint64_t>(now_ns());
  } catch (const std::exception& e) {
    setup_error = e.what();
    card.magic = 0;
  }
  std::snprintf(card.host, sizeof card.host, "%s", host_.c_str());
  std::vector<Card> cards(size_);
  all_gather(&card, sizeof card, cards.data());
  address_ = "tcp " + ip_text(card.ip) + ":" + std::to_string(ntohs(card.port));
  for (int r = 0; r < size_; ++r) {
    cards[r].host[sizeof cards[r].host - 1] = 0;
    peers_[r].name =
        rank_name(r, cards[r].host) + " (" + ip_text(cards[r].ip) + ":" + std::to_string(ntohs(cards[r].port)) + ")";
  }
  auto close_all = [&] {
    if (listener >= 0) ::close(listener);
    for (auto& p : peers_)
      if (p.fd >= 0) ::close(p.fd), p.fd = -1;
  };
  if (!setup_error.empty()) {
    close_all();
    throw CollectiveError(setup_error);
  }
  for (int r = 0; r < size_; ++r)
    if (cards[r].magic != kMagic) {
      close_all();
      throw CollectiveError("tcp transport: " + rank_name(r, cards[r].host) +
                            " could not listen (see its message); use --transport mpi until it can");
    }
  const uint64_t nonce = cards[0].nonce;
  const int64_t deadline = now_ns() + int64_t(kSetupTimeoutMs) * 1'000'000;
  try {
    // Connect to every lower rank (their listeners exist: they were made before the all-gather).
    for (int r = 0; r < rank_; ++r) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      peers_[r].fd = fd;
      set_nonblocking(fd);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = cards[r].ip;
      addr.sin_port = cards[r].port;
      int err = 0;
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
          pollfd pfd{fd, POLLOUT, 0};
          err = ::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(0, (deadline - now_ns()) / 1'000'000))) == 1
                    ? 0
                    : ETIMEDOUT;
          socklen_t l = sizeof err;
          if (!err) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        }
      }
      if (err)
        throw CollectiveError("tcp transport: " + me + " cannot connect to " + peers_[r].name + ": " +
                              std::strerror(err) +
                              " (is a firewall between the nodes? is the address on the cluster link?); or use "
                              "--transport mpi");
      set_socket_options(fd);
      Hello h{kMagic, rank_, nonce};
      if (!io_all(fd, &h, sizeof h, true, deadline)) fail(r, "sending its rank to", errno);
    }
    // Accept every higher rank; a connection without this job's hello is closed and ignored.
    int waiting = size_ - 1 - rank_;
    set_nonblocking(listener);
    while (waiting > 0) {
      const int64_t left_ms = (deadline - now_ns()) / 1'000'000;
      pollfd pfd{listener, POLLIN, 0};
      if (left_ms <= 0 || ::poll(&pfd, 1, static_cast<int>(left_ms)) <= 0) {
        std::string missing;
        for (int r = rank_ + 1; r < size_; ++r)
          if (peers_[r].fd < 0) missing += (missing.empty() ? "" : ", ") + peers_[r].name;
        throw CollectiveError("tcp transport: " + me + " waited " + std::to_string(kSetupTimeoutMs / 1000) + " s for " +
                              missing +
                              " to connect: it cannot reach this address (firewall? another network?); use "
                              "--transport mpi or fix the link");
      }
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;
      Hello h{};
      if (!io_all(fd, &h, sizeof h, false, std::min(deadline, now_ns() + 5'000'000'000)) || h.magic != kMagic ||
          h.nonce != nonce || h.rank <= rank_ || h.rank >= size_ || peers_[h.rank].fd >= 0) {
        ::close(fd);
        continue;
      }
      set_socket_options(fd);
      peers_[h.rank].fd = fd;
      --waiting;
    }
  } catch (...) {
    close_all();
    throw;
  }
  ::close(listener);
}

TcpTransport::~TcpTransport() {
  for (auto& p : peers_)
    if (p.fd >= 0) ::close(p.fd);
}

void TcpTransport::fail(int peer, const char* what, int err) const {
  const std::string why = err ? std::strerror(err) : "the connection closed";
  throw CollectiveError("tcp transport: " + rank_name(rank_, host_) + " failed " + what + " " + peers_[peer].name +
                        ": " + why + " (that rank has probably stopped; see its message)");
}

void TcpTransport::begin_stream() {
  for (int p = 0; p < size_; ++p) sendq_[p].clear(), recvq_[p].clear(), send_at_[p] = recv_at_[p] = 0;
  recv_handles_.clear();
  open_ = 0;
}

void TcpTransport::post_send(const Transfer& t) {
  bytes_sent += t.bytes;
  if (!t.bytes) return;
  sendq_[t.peer].push_back({static_cast<char*>(t.data), t.bytes});
  ++open_;
  if (send_at_[t.peer] + 1 == sendq_[t.peer].size()) try_send(t.peer);  // on the wire at once
}

bool TcpTransport::try_send(int p) {
  if (send_at_[p] >= sendq_[p].size()) return false;
  Pending& q = sendq_[p][send_at_[p]];
  const ssize_t n = ::send(peers_[p].fd, q.p, std::min(q.left, kMaxIoBytes), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) fail(p, "sending to", errno);
  if (n <= 0) return false;
  q.p += n, q.left -= static_cast<size_t>(n);
  if (!q.left) --open_, ++send_at_[p];
  return true;
}

size_t TcpTransport::post_recv(const Transfer& t) {
  recv_handles_.push_back({t.peer, recvq_[t.peer].size()});
  recvq_[t.peer].push_back({static_cast<char*>(t.data), t.bytes});
  if (t.bytes) ++open_;
  return recv_handles_.size() - 1;
}

void TcpTransport::wait_recv(size_t handle) {
  const auto [peer, index] = recv_handles_[handle];
  const Pending& q = recvq_[peer][index];
  progress_until([&] { return q.left == 0; });
}

void TcpTransport::wait_all() {
  progress_until([&] { return open_ == 0; });
}

void TcpTransport::exchange(std::span<const Transfer> sends, std::span<const Transfer> recvs) {
  begin_stream();
  for (const auto& t : recvs) post_recv(t);
  for (const auto& t : sends) post_send(t);
  wait_all();
}

// Moves bytes on every socket with work until done() holds: sends and receives of all peers
// progress together (so two ranks sending each other large vectors never wait on each other).
template <class Done>
void TcpTransport::progress_until(const Done& done) {
  int64_t last_progress = 0;
  while (!done()) {
    bool progress = false;
    for (int p = 0; p < size_; ++p) {
      while (recv_at_[p] < recvq_[p].size()) {
        Pending& q = recvq_[p][recv_at_[p]];
        if (q.left == 0) {  // a zero-byte receive
          ++recv_at_[p];
          continue;
        }
        const ssize_t n = ::recv(peers_[p].fd, q.p, std::min(q.left, kMaxIoBytes), MSG_DONTWAIT);
        if (n == 0) fail(p, "receiving from", 0);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
          fail(p, "receiving from", errno);
        }
        progress = true;
        q.p += n, q.left -= static_cast<size_t>(n);
        if (q.left) continue;
        --open_;
        ++recv_at_[p];
      }
      if (try_send(p)) progress = true;
    }
    if (done()) break;
    const int64_t t = now_ns();
    if (progress || last_progress == 0) {
      last_progress = t;
      continue;
    }
    if (t - last_progress < spin_ns()) {
      // Spinning gives the core away at once: with more ranks than cores (the test cluster, a
      // loaded machine) the peer this rank waits for may need it to send.
      sched_yield();
      continue;
    }
    // Nothing moved for a while: block until a socket can move bytes (the communicator's stall
    // watchdog ends a wait that never ends).
    fds_.clear();
    for (int p = 0; p < size_; ++p) {
      short ev = 0;
      if (recv_at_[p] < recvq_[p].size()) ev |= POLLIN;
      if (send_at_[p] < sendq_[p].size()) ev |= POLLOUT;
      if (ev) fds_.push_back({peers_[p].fd, ev, 0});
    }
    if (::poll(fds_.data(), fds_.size(), -1) < 0 && errno != EINTR)
      throw CollectiveError("tcp transport: poll failed on " + rank_name(rank_, host_) + ": " + std::strerror(errno));
    last_progress = now_ns();
  }
}

}  // namespace clusterctl::collectives
