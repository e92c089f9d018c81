#include "collectives/algorithms/emulated_link.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "collectives/algorithms/steady_wait.h"
#include "collectives/error.h"

namespace clusterctl::collectives {
namespace {

const char* const kForm =
    "the form is latency=300us,bandwidth=10gbit[,jitter=20us] (times in ns, us, ms or s; "
    "bandwidth in kbit, mbit, gbit, kbyte, mbyte or gbyte per second)";

double parse_number(std::string_view v, std::string_view& unit, std::string_view key) {
  size_t i = 0;
  while (i < v.size() && (std::isdigit(static_cast<unsigned char>(v[i])) || v[i] == '.')) ++i;
  const std::string num(v.substr(0, i));
  char* end = nullptr;
  const double x = num.empty() ? NAN : std::strtod(num.c_str(), &end);
  if (num.empty() || *end || !std::isfinite(x))
    throw CollectiveError("--emulate-link: " + std::string(key) + "=" + std::string(v) +
                          " does not start with a number; " + kForm);
  unit = v.substr(i);
  return x;
}

}  // namespace

LinkSpec parse_link_spec(std::string_view text) {
  LinkSpec s;
  bool have_latency = false, have_bandwidth = false;
  if (text.size() > 200) throw CollectiveError("--emulate-link: over 200 characters; " + std::string(kForm));
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const std::string_view part = text.substr(at, comma - at);
    at = comma + 1;
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos)
      throw CollectiveError("--emulate-link: '" + std::string(part) + "' is not KEY=VALUE; " + kForm);
    const std::string_view key = part.substr(0, eq), value = part.substr(eq + 1);
    std::string_view unit;
    const double x = parse_number(value, unit, key);
    if (key == "latency" || key == "jitter") {
      double scale = 0;
      if (unit == "ns")
        scale = 1e-9;
      else if (unit == "us")
        scale = 1e-6;
      else if (unit == "ms")
        scale = 1e-3;
      else if (unit == "s")
        scale = 1;
      else
        throw CollectiveError("--emulate-link: " + std::string(key) + "=" + std::string(value) +
                              " needs a unit (ns, us, ms or s); " + kForm);
      if (x * scale > 10)
        throw CollectiveError("--emulate-link: " + std::string(key) + " over 10 s is not a link; " + kForm);
      (key == "latency" ? s.latency_s : s.jitter_s) = x * scale;
      if (key == "latency") have_latency = true;
    } else if (key == "bandwidth") {
      double bps = 0;
      if (unit == "kbit")
        bps = 1e3 / 8;
      else if (unit == "mbit")
        bps = 1e6 / 8;
      else if (unit == "gbit")
        bps = 1e9 / 8;
      else if (unit == "kbyte")
        bps = 1e3;
      else if (unit == "mbyte")
        bps = 1e6;
      else if (unit == "gbyte")
        bps = 1e9;
      else
        throw CollectiveError("--emulate-link: bandwidth=" + std::string(value) +
                              " needs a unit (kbit, mbit, gbit, kbyte, mbyte or gbyte); " + kForm);
      if (!(x > 0)) throw CollectiveError("--emulate-link: bandwidth must be above 0; " + std::string(kForm));
      s.bandwidth_bytes_per_s = x * bps;
      have_bandwidth = true;
    } else {
      throw CollectiveError("--emulate-link: unknown key '" + std::string(key) + "'; " + kForm);
    }
    if (comma == text.size()) break;
  }
  if (!have_latency || !have_bandwidth)
    throw CollectiveError("--emulate-link: both latency and bandwidth are needed; " + std::string(kForm));
  s.text = std::string(text);
  return s;
}

std::string describe(const LinkSpec& link) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "emulated link: latency %.0f us, bandwidth %.3g Gbit/s, jitter %.0f us",
                link.latency_s * 1e6, link.bandwidth_bytes_per_s * 8 / 1e9, link.jitter_s * 1e6);
  return buf;
}

EmulatedLinkTransport::EmulatedLinkTransport(Transport& inner, const LinkSpec& link)
    : inner_(inner), link_(link), rng_(0x5eed + static_cast<uint64_t>(inner.rank())) {}

void EmulatedLinkTransport::exchange(std::span<const Transfer> sends, std::span<const Transfer> recvs) {
  const int64_t t0 = steady_now_ns();
  const int64_t lat = static_cast<int64_t>(link_.latency_s * 1e9);
  std::uniform_int_distribution<int64_t> jitter(0, static_cast<int64_t>(link_.jitter_s * 1e9));
  std::vector<int64_t> arrive(sends.size()), arrived(recvs.size());
  std::vector<Transfer> all_sends, all_recvs;
  int64_t free = std::max(link_free_ns_, t0);
  for (size_t i = 0; i < sends.size(); ++i) {
    free += static_cast<int64_t>(static_cast<double>(sends[i].bytes) / link_.bandwidth_bytes_per_s * 1e9);
    arrive[i] = free + lat + jitter(rng_);
    all_sends.push_back(sends[i]);
    all_sends.push_back({sends[i].peer, &arrive[i], sizeof(int64_t)});
  }
  link_free_ns_ = free;
  for (size_t i = 0; i < recvs.size(); ++i) {
    all_recvs.push_back(recvs[i]);
    all_recvs.push_back({recvs[i].peer, &arrived[i], sizeof(int64_t)});
  }
  inner_.exchange(all_sends, all_recvs);
  const int64_t now = steady_now_ns();
  for (int64_t a : arrived) ++emulated_arrivals, emulated_late_arrivals += now > a;
  int64_t done = free;  // this rank's sends have left
  for (int64_t a : arrived) done = std::max(done, a);
  sleep_until_steady_ns(done);  // nothing of this exchange is left to move
  bytes_sent = inner_.bytes_sent;
}

void EmulatedLinkTransport::begin_stream() {
  inner_.begin_stream();
  send_stamps_.clear();
  recv_stamps_.clear();
  recv_inner_.clear();
}

void EmulatedLinkTransport::post_send(const Transfer& t) {
  std::uniform_int_distribution<int64_t> jitter(0, static_cast<int64_t>(link_.jitter_s * 1e9));
  link_free_ns_ = std::max(link_free_ns_, steady_now_ns()) +
                  static_cast<int64_t>(static_cast<double>(t.bytes) / link_.bandwidth_bytes_per_s * 1e9);
  send_stamps_.push_back(link_free_ns_ + static_cast<int64_t>(link_.latency_s * 1e9) + jitter(rng_));
  inner_.post_send(t);
  inner_.post_send({t.peer, &send_stamps_.back(), sizeof(int64_t)});
  bytes_sent = inner_.bytes_sent;
}

size_t EmulatedLinkTransport::post_recv(const Transfer& t) {
  recv_inner_.push_back(inner_.post_recv(t));
  recv_stamps_.push_back(0);
  inner_.post_recv({t.peer, &recv_stamps_.back(), sizeof(int64_t)});
  return recv_inner_.size() - 1;
}

// While this receive waits for its arrival time, the rank's other posted transfers keep moving:
// on a link slower than the emulated one the real transfer and the emulated delay then overlap, as
// a real link's would, instead of adding up.
void EmulatedLinkTransport::wait_recv(size_t handle) {
  // The stamp is matched after its message but, over MPI, may complete first (an eager 8 bytes
  // overtaking a rendezvous piece): wait for both.
  inner_.wait_recv(recv_inner_[handle]);
  inner_.wait_recv(recv_inner_[handle] + 1);
  ++emulated_arrivals, emulated_late_arrivals += steady_now_ns() > recv_stamps_[handle];
  inner_.keep_moving_until(recv_stamps_[handle]);
}

void EmulatedLinkTransport::wait_all() {
  inner_.wait_all();
  int64_t done = link_free_ns_;  // this rank's sends have left
  for (int64_t a : recv_stamps_) done = std::max(done, a);
  sleep_until_steady_ns(done);
}

}  // namespace clusterctl::collectives
