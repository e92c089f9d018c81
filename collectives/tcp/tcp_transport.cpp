#include "collectives/tcp/tcp_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "collectives/algorithms/steady_wait.h"
#include "collectives/communicator.h"
#include "collectives/error.h"
#include "collectives/network_address.h"

namespace clusterctl::collectives {
namespace {

constexpr uint32_t kMagic = 0x434c5443;          // "CLTC"
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
  char source[96];  // what chose the address ("--tcp-interface lo")
  char error[512];  // magic 0: why this rank could not listen
};
// What each rank reports after connecting (all-gathered): the first peer it could not connect to
// (kConnect, errno), else the first higher rank that never connected to it (kAccept).
struct SetupStatus {
  enum Kind : int32_t { kFine = 0, kConnect = 1, kAccept = 2 };
  int32_t kind = kFine;
  int32_t peer = -1;
  int32_t err = 0;
  int32_t pad = 0;
};
// What a connecting rank sends first.
struct Hello {
  uint32_t magic;
  int32_t rank;
  uint64_t nonce;
};

// $CLUSTERCTL_TCP_SPIN_US (0: block at once), for measuring; -1 where unset.
int64_t spin_ns_from_env() {
  const char* v = std::getenv("CLUSTERCTL_TCP_SPIN_US");
  if (!v || !*v) return -1;
  return std::clamp<int64_t>(std::atoll(v), 0, 1'000'000) * 1000;
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
    const int64_t left_ms = (deadline_ns - steady_now_ns()) / 1'000'000;
    if (left_ms <= 0) return errno = 0, false;
    pollfd pfd{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    ::poll(&pfd, 1, static_cast<int>(left_ms));
  }
  return true;
}

// The one message for a mesh that did not connect, the same on every rank: which rank could not
// be reached from which and why, where the ranks involved listen and what chose those addresses,
// and what to change. "" when every pair connected.
std::string setup_failure(const std::vector<Card>& cards, const std::vector<SetupStatus>& statuses, double timeout_s) {
  const int n = static_cast<int>(cards.size());
  auto who = [&](int r) { return rank_name(r, cards[r].host); };
  auto where = [&](int r) { return ipv4_text(cards[r].ip) + ":" + std::to_string(ntohs(cards[r].port)); };
  std::vector<std::string> lines;
  std::vector<bool> involved(n);
  for (int target = 0; target < n; ++target) {
    std::string from;
    int err = 0;
    for (int r = 0; r < n; ++r)
      if (statuses[r].kind == SetupStatus::kConnect && statuses[r].peer == target) {
        from += (from.empty() ? "" : ", ") + who(r);
        err = statuses[r].err;
        involved[r] = true;
      }
    if (from.empty()) continue;
    involved[target] = true;
    lines.push_back(who(target) + " at " + where(target) + " could not be reached from " + from + " (" +
                    std::strerror(err) + ")");
  }
  for (int r = 0; r < n; ++r) {
    if (statuses[r].kind != SetupStatus::kAccept) continue;
    const int p = statuses[r].peer;
    if (p < 0 || p >= n || statuses[p].kind == SetupStatus::kConnect) continue;  // explained above
    involved[r] = involved[p] = true;
    lines.push_back(who(p) + " did not connect to " + who(r) + " at " + where(r));
  }
  if (lines.empty()) return "";
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", timeout_s);
  std::string msg = "tcp transport: the ranks could not connect within " + std::string(secs) + " s (--tcp-timeout): ";
  for (size_t i = 0; i < lines.size(); ++i) msg += (i ? "; " : "") + lines[i];
  msg += ". Addresses: ";
  bool first = true;
  for (int r = 0; r < n; ++r)
    if (involved[r]) {
      msg += std::string(first ? "" : ", ") + who(r) + " listens on " + ipv4_text(cards[r].ip) + " (" +
             cards[r].source + ")";
      first = false;
    }
  return msg +
         ". Every rank must listen on its address on the cluster link, which the other nodes reach: set the "
         "link's tcp_interface in the cluster file (or --tcp-interface) to that network or interface, open the "
         "ports between the nodes if a firewall is in the way, or use transport: mpi (--transport mpi)";
}

}  // namespace

ListenAddress tcp_listen_address(const std::string& spec_in, const std::string& host) {
  std::string spec = spec_in;
  std::string source = "--tcp-interface";
  if (spec.empty())
    if (const char* e = std::getenv("CLUSTERCTL_TCP_IF"); e && *e) spec = e, source = "$CLUSTERCTL_TCP_IF";
  if (spec.empty())
    if (const char* e = std::getenv("OMPI_MCA_btl_tcp_if_include"); e && *e)
      spec = e, source = "btl_tcp_if_include";  // the cluster link `up` pins MPI to
  const std::vector<LocalAddress> addrs = local_ipv4_addresses();
  if (spec.empty()) {
    for (const auto& a : addrs)
      if (a.up && (ntohl(a.address) >> 24) != 127) return {ipv4_text(a.address), "its first non-loopback address"};
    return {"127.0.0.1", "loopback, its only address"};
  }
  const std::string what = "tcp transport on " + host + ": " + source;
  const std::string ip = address_matching(spec, addrs, what);
  if (ip.empty())
    throw CollectiveError(what + " '" + spec + "' matches none of this host's IPv4 addresses (" +
                          describe_addresses(addrs) +
                          "); name the cluster link's network or interface in the cluster file's link (tcp_interface) "
                          "or with --tcp-interface, or use --transport mpi");
  return {ip, source + " " + spec + (source == "btl_tcp_if_include" ? ", the link MPI is pinned to" : "")};
}

TcpTransport::TcpTransport(int rank, int size, const std::string& host, const std::string& interface_spec,
                           double setup_timeout_s, const AllGather& all_gather)
    : rank_(rank), size_(size), host_(host), peers_(size), sendq_(size), recvq_(size), send_at_(size), recv_at_(size) {
  set_spin_ns(kDefaultSpinNs);
  const std::string me = rank_name(rank_, host_);
  // Nothing here throws before the all-gathers: a rank that threw alone would leave the others
  // waiting in one. Errors travel in the cards and statuses, and every rank throws the same.
  int listener = -1;
  Card card{};
  card.magic = kMagic;
  try {
    const ListenAddress where = tcp_listen_address(interface_spec, host_);
    std::snprintf(card.source, sizeof card.source, "%s", where.source.c_str());
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, where.ip.c_str(), &addr.sin_addr);
    socklen_t len = sizeof addr;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, size_) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw CollectiveError("tcp transport: " + me + " cannot listen on " + where.ip + ": " + std::strerror(errno));
    card.ip = addr.sin_addr.s_addr;
    card.port = addr.sin_port;
    card.nonce = std::random_device{}() * 0x100000001ull + static_cast<uint64_t>(steady_now_ns());
  } catch (const std::exception& e) {
    std::snprintf(card.error, sizeof card.error, "%s", e.what());
    card.magic = 0;
  }
  std::snprintf(card.host, sizeof card.host, "%s", host_.c_str());
  std::vector<Card> cards(size_);
  all_gather(&card, sizeof card, cards.data());
  address_ = "tcp " + ipv4_text(card.ip) + ":" + std::to_string(ntohs(card.port));
  for (int r = 0; r < size_; ++r) {
    cards[r].host[sizeof cards[r].host - 1] = 0;
    cards[r].source[sizeof cards[r].source - 1] = 0;
    cards[r].error[sizeof cards[r].error - 1] = 0;
    peers_[r].name =
        rank_name(r, cards[r].host) + " (" + ipv4_text(cards[r].ip) + ":" + std::to_string(ntohs(cards[r].port)) + ")";
  }
  auto close_all = [&] {
    if (listener >= 0) ::close(listener), listener = -1;
    for (auto& p : peers_)
      if (p.fd >= 0) ::close(p.fd), p.fd = -1;
  };
  std::string cannot_listen;
  for (int r = 0; r < size_; ++r)
    if (cards[r].magic != kMagic) cannot_listen += std::string(cannot_listen.empty() ? "" : "; ") + cards[r].error;
  if (!cannot_listen.empty()) {
    close_all();
    throw JobWideCollectiveError(cannot_listen);
  }
  const uint64_t nonce = cards[0].nonce;
  const int64_t timeout_ns = static_cast<int64_t>(setup_timeout_s * 1e9);
  const int64_t deadline = steady_now_ns() + timeout_ns;
  SetupStatus status;
  // Connect to every lower rank (their listeners exist: they were made before the all-gather).
  // Each try ends by the deadline, so a rank that cannot reach one peer still reaches the
  // statuses' all-gather in time.
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
        err = ::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(0, (deadline - steady_now_ns()) / 1'000'000))) == 1
                  ? 0
                  : ETIMEDOUT;
        socklen_t l = sizeof err;
        if (!err) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
      }
    }
    if (!err) {
      set_socket_options(fd);
      Hello h{kMagic, rank_, nonce};
      if (!io_all(fd, &h, sizeof h, true, deadline)) err = errno ? errno : ETIMEDOUT;
    }
    if (err && status.kind == SetupStatus::kFine) status = {SetupStatus::kConnect, r, err, 0};
  }
  // Accept every higher rank until the deadline; a connection without this job's hello is closed
  // and ignored.
  int waiting = size_ - 1 - rank_;
  set_nonblocking(listener);
  while (waiting > 0) {
    const int64_t left_ms = (deadline - steady_now_ns()) / 1'000'000;
    pollfd pfd{listener, POLLIN, 0};
    if (left_ms <= 0 || ::poll(&pfd, 1, static_cast<int>(left_ms)) <= 0) break;
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    Hello h{};
    if (!io_all(fd, &h, sizeof h, false, deadline) || h.magic != kMagic || h.nonce != nonce || h.rank <= rank_ ||
        h.rank >= size_ || peers_[h.rank].fd >= 0) {
      ::close(fd);
      continue;
    }
    set_socket_options(fd);
    peers_[h.rank].fd = fd;
    --waiting;
  }
  if (status.kind == SetupStatus::kFine)
    for (int r = rank_ + 1; r < size_; ++r)
      if (peers_[r].fd < 0) {
        status = {SetupStatus::kAccept, r, 0, 0};
        break;
      }
  std::vector<SetupStatus> statuses(size_);
  all_gather(&status, sizeof status, statuses.data());
  ::close(listener);
  listener = -1;
  const std::string failed = setup_failure(cards, statuses, setup_timeout_s);
  if (!failed.empty()) {
    close_all();
    throw JobWideCollectiveError(failed);
  }
}

void TcpTransport::set_spin_ns(int64_t ns) {
  const int64_t forced = spin_ns_from_env();
  spin_ns_ = forced >= 0 ? forced : std::max<int64_t>(ns, 0);
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

bool TcpTransport::move_bytes() {
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
  return progress;
}

void TcpTransport::watched_sockets() {
  fds_.clear();
  for (int p = 0; p < size_; ++p) {
    short ev = 0;
    if (recv_at_[p] < recvq_[p].size()) ev |= POLLIN;
    if (send_at_[p] < sendq_[p].size()) ev |= POLLOUT;
    if (ev) fds_.push_back({peers_[p].fd, ev, 0});
  }
}

// Moves bytes on every socket with work until done() holds: sends and receives of all peers
// progress together (so two ranks sending each other large vectors never wait on each other).
template <class Done>
void TcpTransport::progress_until(const Done& done) {
  int64_t last_progress = 0;
  while (!done()) {
    const bool progress = move_bytes();
    if (done()) break;
    const int64_t t = steady_now_ns();
    if (progress || last_progress == 0) {
      last_progress = t;
      continue;
    }
    if (t - last_progress < spin_ns_) {
      // Spinning gives the core away at once: with more ranks than cores (the test cluster, a
      // loaded machine) the peer this rank waits for may need it to send.
      sched_yield();
      continue;
    }
    // Nothing moved for a while: block until a socket can move bytes (the communicator's stall
    // watchdog ends a wait that never ends).
    watched_sockets();
    if (::poll(fds_.data(), fds_.size(), -1) < 0 && errno != EINTR)
      throw CollectiveError("tcp transport: poll failed on " + rank_name(rank_, host_) + ": " + std::strerror(errno));
    last_progress = steady_now_ns();
  }
}

// No spin here: the moment is known, so the kernel wakes this rank for a socket or for it.
void TcpTransport::keep_moving_until(int64_t steady_ns) {
  for (;;) {
    if (open_ == 0) return sleep_until_steady_ns(steady_ns);
    if (move_bytes()) continue;
    watched_sockets();
    const int rc = poll_until_steady_ns(fds_.data(), fds_.size(), steady_ns);
    if (rc > 0 || (rc < 0 && errno == EINTR)) continue;
    if (rc < 0)
      throw CollectiveError("tcp transport: poll failed on " + rank_name(rank_, host_) + ": " + std::strerror(errno));
    if (steady_ns - steady_now_ns() <= wake_margin_ns()) return sleep_until_steady_ns(steady_ns);
  }
}

}  // namespace clusterctl::collectives
