#include "collectives/algorithms/allreduce.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "collectives/algorithms/steady_wait.h"
#include "collectives/error.h"

namespace clusterctl::collectives {
namespace {

constexpr size_t kQ8Block = 32;
// The pipelined ring's piece: 256 KiB of doubles, whole q8 blocks; rings of at least two pieces a
// chunk are pipelined.
constexpr size_t kRingPiece = 32768;

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

std::string_view algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::kMpi:
      return "mpi";
    case Algorithm::kOneShot:
      return "one-shot";
    case Algorithm::kRecursiveDoubling:
      return "recursive-doubling";
    case Algorithm::kRing:
      return "ring";
  }
  return "?";
}
std::optional<Algorithm> parse_algorithm(std::string_view name) {
  for (Algorithm a : kAlgorithms)
    if (algorithm_name(a) == name) return a;
  return std::nullopt;
}
std::string_view transport_name(TransportKind t) { return t == TransportKind::kTcp ? "tcp" : "mpi"; }
std::optional<TransportKind> parse_transport(std::string_view name) {
  for (TransportKind t : kTransportKinds)
    if (transport_name(t) == name) return t;
  return std::nullopt;
}

std::string_view wire_format_name(WireFormat f) {
  switch (f) {
    case WireFormat::kDouble:
      return "double";
    case WireFormat::kFloat32:
      return "float32";
    case WireFormat::kBf16:
      return "bf16";
    case WireFormat::kQ8Block:
      return "q8";
  }
  return "?";
}
std::optional<WireFormat> parse_wire_format(std::string_view name) {
  for (WireFormat f : kWireFormats)
    if (wire_format_name(f) == name) return f;
  return std::nullopt;
}

size_t wire_bytes(WireFormat f, size_t n) {
  switch (f) {
    case WireFormat::kDouble:
      return n * 8;
    case WireFormat::kFloat32:
      return n * 4;
    case WireFormat::kBf16:
      return n * 2;
    case WireFormat::kQ8Block:
      return n + 4 * ((n + kQ8Block - 1) / kQ8Block);
  }
  return 0;
}

void encode(WireFormat f, const double* x, size_t n, uint8_t* out) {
  switch (f) {
    case WireFormat::kDouble:
      std::memcpy(out, x, n * 8);
      return;
    case WireFormat::kFloat32:
      for (size_t i = 0; i < n; ++i) {
        const float v = static_cast<float>(x[i]);
        std::memcpy(out + 4 * i, &v, 4);
      }
      return;
    case WireFormat::kBf16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = to_bf16(static_cast<float>(x[i]));
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case WireFormat::kQ8Block:
      for (size_t b = 0; b < n; b += kQ8Block) {
        const size_t len = std::min(kQ8Block, n - b);
        double amax = 0;
        for (size_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(x[b + i]));
        const float d = static_cast<float>(amax / 127);
        std::memcpy(out, &d, 4);
        const float inv = d != 0 ? 1.0f / d : 0.0f;
        for (size_t i = 0; i < len; ++i)
          out[4 + i] = static_cast<uint8_t>(
              static_cast<int8_t>(std::clamp(std::nearbyint(static_cast<float>(x[b + i]) * inv), -127.0f, 127.0f)));
        out += 4 + len;
      }
      return;
  }
}

void decode(WireFormat f, const uint8_t* in, size_t n, double* out) {
  switch (f) {
    case WireFormat::kDouble:
      std::memcpy(out, in, n * 8);
      return;
    case WireFormat::kFloat32:
      for (size_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, in + 4 * i, 4);
        out[i] = v;
      }
      return;
    case WireFormat::kBf16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        out[i] = from_bf16(h);
      }
      return;
    case WireFormat::kQ8Block:
      for (size_t b = 0; b < n; b += kQ8Block) {
        const size_t len = std::min(kQ8Block, n - b);
        float d;
        std::memcpy(&d, in, 4);
        for (size_t i = 0; i < len; ++i)
          out[b + i] = static_cast<double>(d * static_cast<float>(static_cast<int8_t>(in[4 + i])));
        in += 4 + len;
      }
      return;
  }
}

void Transport::keep_moving_until(int64_t steady_ns) { sleep_until_steady_ns(steady_ns); }

void Allreducer::run(Algorithm a, WireFormat f, double* data, size_t n) {
  if (t_.size() == 1 || n == 0) return;
  switch (a) {
    case Algorithm::kOneShot:
      return one_shot(f, data, n);
    case Algorithm::kRecursiveDoubling:
      return recursive_doubling(f, data, n);
    case Algorithm::kRing:
      return ring(f, data, n);
    case Algorithm::kMpi:
      break;
  }
  throw CollectiveError("Allreducer::run: the backend's own all-reduce is not one of ours");
}

// Every rank's vector to every other; each sums the N rounded vectors in rank order.
void Allreducer::one_shot(WireFormat f, double* data, size_t n) {
  const int N = t_.size(), me = t_.rank();
  const size_t wb = wire_bytes(f, n);
  send_.resize(wb);
  recv_.resize(wb * N);
  encode(f, data, n, send_.data());
  std::vector<Transfer> sends, recvs;
  for (int p = 0; p < N; ++p) {
    if (p == me) continue;
    sends.push_back({p, send_.data(), wb});
    recvs.push_back({p, recv_.data() + wb * p, wb});
  }
  std::memcpy(recv_.data() + wb * me, send_.data(), wb);
  t_.exchange(sends, recvs);
  tmp_.resize(n);
  decode(f, recv_.data(), n, data);
  for (int p = 1; p < N; ++p) {
    decode(f, recv_.data() + wb * p, n, tmp_.data());
    for (size_t i = 0; i < n; ++i) data[i] += tmp_[i];
  }
}

// Pairs at distance 1, 2, 4...: each exchanges its whole (rounded) vector with its partner and
// both add the lower rank's operand first. With N not a power of two, the first 2r ranks
// (r = N - 2^floor(log2 N)) fold pairwise into their odd member first and get the result back last.
void Allreducer::recursive_doubling(WireFormat f, double* data, size_t n) {
  const int N = t_.size(), me = t_.rank();
  int p2 = 1;
  while (p2 * 2 <= N) p2 *= 2;
  const int rem = N - p2;
  const size_t wb = wire_bytes(f, n);
  send_.resize(wb);
  recv_.resize(wb);
  tmp_.resize(n);
  auto round_own = [&] {  // the value this rank sends is the value it keeps
    encode(f, data, n, send_.data());
    decode(f, send_.data(), n, data);
  };
  auto one = [&](int peer, bool send, bool recv) {
    const Transfer s{peer, send_.data(), wb}, r{peer, recv_.data(), wb};
    t_.exchange(send ? std::span<const Transfer>(&s, 1) : std::span<const Transfer>(),
                recv ? std::span<const Transfer>(&r, 1) : std::span<const Transfer>());
  };
  int vrank;
  if (me < 2 * rem) {
    round_own();
    if (me % 2 == 0) {  // folds into me + 1, then waits for the result
      one(me + 1, true, false);
      one(me + 1, false, true);
      decode(f, recv_.data(), n, data);
      return;
    }
    one(me - 1, false, true);
    decode(f, recv_.data(), n, tmp_.data());
    for (size_t i = 0; i < n; ++i) data[i] = tmp_[i] + data[i];
    vrank = me / 2;
  } else {
    vrank = me - rem;
  }
  for (int mask = 1; mask < p2; mask <<= 1) {
    const int vpeer = vrank ^ mask;
    const int peer = vpeer < rem ? 2 * vpeer + 1 : vpeer + rem;
    round_own();
    one(peer, true, true);
    decode(f, recv_.data(), n, tmp_.data());
    if (vrank < vpeer)
      for (size_t i = 0; i < n; ++i) data[i] = data[i] + tmp_[i];
    else
      for (size_t i = 0; i < n; ++i) data[i] = tmp_[i] + data[i];
  }
  round_own();
  if (me < 2 * rem) one(me - 1, true, false);
}

namespace {

// The ring's N chunks of n values (the first n % N of them one longer): where each starts in the
// vector and in its wire image, shared by the plain and the pipelined ring so both cut alike.
struct RingChunks {
  std::vector<size_t> start, woff;
  RingChunks(WireFormat f, size_t n, int N) : start(N + 1), woff(N + 1) {
    for (int c = 0; c < N; ++c) {
      const size_t len = n / N + (static_cast<size_t>(c) < n % N ? 1 : 0);
      start[c + 1] = start[c] + len;
      woff[c + 1] = woff[c] + wire_bytes(f, len);
    }
  }
};

}  // namespace

// Reduce-scatter: N-1 hops, each passing one chunk (1/N of the vector) to the right neighbour,
// which adds the incoming partial before its own; rank r then holds chunk (r+1) mod N summed.
// All-gather: N-1 hops forwarding the summed chunks' wire bytes unchanged.
void Allreducer::ring(WireFormat f, double* data, size_t n) {
  const int N = t_.size(), me = t_.rank();
  if (t_.streams() && n / N >= 2 * kRingPiece) return pipelined_ring(f, data, n);
  const int right = (me + 1) % N, left = (me + N - 1) % N;
  const RingChunks chunks(f, n, N);
  const std::vector<size_t>&start = chunks.start, &woff = chunks.woff;
  auto len = [&](int c) { return start[c + 1] - start[c]; };
  send_.resize(woff[N]);  // the wire image of every chunk, for the all-gather
  recv_.resize(wire_bytes(f, len(0)));
  tmp_.resize(len(0));
  for (int s = 0; s < N - 1; ++s) {
    const int cs = ((me - s) % N + N) % N, cr = ((me - s - 1) % N + N) % N;
    encode(f, data + start[cs], len(cs), send_.data() + woff[cs]);
    const Transfer st{right, send_.data() + woff[cs], woff[cs + 1] - woff[cs]};
    const Transfer rt{left, recv_.data(), woff[cr + 1] - woff[cr]};
    t_.exchange({&st, 1}, {&rt, 1});
    decode(f, recv_.data(), len(cr), tmp_.data());
    double* d = data + start[cr];
    for (size_t i = 0; i < len(cr); ++i) d[i] = tmp_[i] + d[i];
  }
  const int own = (me + 1) % N;
  encode(f, data + start[own], len(own), send_.data() + woff[own]);
  decode(f, send_.data() + woff[own], len(own), data + start[own]);
  for (int s = 0; s < N - 1; ++s) {
    const int cs = ((me + 1 - s) % N + N) % N, cr = ((me - s) % N + N) % N;
    const Transfer st{right, send_.data() + woff[cs], woff[cs + 1] - woff[cs]};
    const Transfer rt{left, send_.data() + woff[cr], woff[cr + 1] - woff[cr]};
    t_.exchange({&st, 1}, {&rt, 1});
    decode(f, send_.data() + woff[cr], len(cr), data + start[cr]);
  }
}

// The same ring, the same sums in the same order (so the same bits), with each chunk cut into
// pieces of kRingPiece values that travel on as soon as they are summed: while piece k is added,
// piece k+1 is on the wire, and a hop's latency is paid once per step instead of once per chunk.
// Every receive is posted at the start (from the left neighbour, in the order they arrive); the
// all-gather receives straight into the wire image it forwards. In the exact double format the
// wire image of a chunk is the vector itself: pieces leave from it and arrive into it, with no
// copies. (A region is never written while a send of it may be pending: the all-gather's bytes of
// a chunk exist only after the right neighbour has received this rank's reduce-scatter piece.)
void Allreducer::pipelined_ring(WireFormat f, double* data, size_t n) {
  const int N = t_.size(), me = t_.rank();
  const int right = (me + 1) % N, left = (me + N - 1) % N;
  const bool raw = f == WireFormat::kDouble;
  const RingChunks chunks(f, n, N);
  const std::vector<size_t>&start = chunks.start, &woff = chunks.woff;
  auto len = [&](int c) { return start[c + 1] - start[c]; };
  auto pieces = [&](int c) { return (len(c) + kRingPiece - 1) / kRingPiece; };
  auto piece_len = [&](int c, size_t k) { return std::min(kRingPiece, len(c) - k * kRingPiece); };
  const size_t piece_wire = wire_bytes(f, kRingPiece);  // kRingPiece is whole q8 blocks
  const size_t step_wire = wire_bytes(f, len(0));       // chunk 0 is the longest
  auto values = [&](int c, size_t k) { return data + start[c] + k * kRingPiece; };
  auto image = [&](int c, size_t k) {  // piece k of chunk c as it travels
    return raw ? reinterpret_cast<uint8_t*>(values(c, k)) : send_.data() + woff[c] + piece_wire * k;
  };
  if (!raw) send_.resize(woff[N]);
  recv_.resize(step_wire * (N - 1));
  tmp_.resize(kRingPiece);
  t_.begin_stream();
  std::vector<size_t> handles;
  for (int s = 0; s < N - 1; ++s) {  // reduce-scatter: chunk (me - s - 1) from the left
    const int cr = ((me - s - 1) % N + N) % N;
    for (size_t k = 0; k < pieces(cr); ++k)
      handles.push_back(
          t_.post_recv({left, recv_.data() + step_wire * s + piece_wire * k, wire_bytes(f, piece_len(cr, k))}));
  }
  for (int s = 0; s < N - 1; ++s) {  // all-gather: chunk (me - s), into its wire image
    const int cr = ((me - s) % N + N) % N;
    for (size_t k = 0; k < pieces(cr); ++k)
      handles.push_back(t_.post_recv({left, image(cr, k), wire_bytes(f, piece_len(cr, k))}));
  }
  auto send_piece = [&](int c, size_t k) {
    if (!raw) encode(f, values(c, k), piece_len(c, k), image(c, k));
    t_.post_send({right, image(c, k), wire_bytes(f, piece_len(c, k))});
  };
  for (size_t k = 0; k < pieces(me); ++k) send_piece(me, k);
  size_t h = 0;
  const int own = (me + 1) % N;
  for (int s = 0; s < N - 1; ++s) {
    const int cr = ((me - s - 1) % N + N) % N;
    for (size_t k = 0; k < pieces(cr); ++k) {
      t_.wait_recv(handles[h++]);
      const size_t pl = piece_len(cr, k);
      const uint8_t* in = recv_.data() + step_wire * s + piece_wire * k;
      double* d = values(cr, k);
      if (raw) {
        for (size_t i = 0; i < pl; ++i) {
          double v;
          std::memcpy(&v, in + 8 * i, 8);
          d[i] = v + d[i];
        }
      } else {
        decode(f, in, pl, tmp_.data());
        for (size_t i = 0; i < pl; ++i) d[i] = tmp_[i] + d[i];
      }
      send_piece(cr, k);
      if (cr == own && !raw) decode(f, image(cr, k), pl, d);  // keep what was sent
    }
  }
  for (int s = 0; s < N - 1; ++s) {
    const int cr = ((me - s) % N + N) % N;
    for (size_t k = 0; k < pieces(cr); ++k) {
      t_.wait_recv(handles[h++]);
      if (!raw) decode(f, image(cr, k), piece_len(cr, k), values(cr, k));
      if (s < N - 2) t_.post_send({right, image(cr, k), wire_bytes(f, piece_len(cr, k))});
    }
  }
  t_.wait_all();
}

// ---- selection ----

Selection::Selection() {
  // Until `clusterctl bench net` measures this cluster: MPI_Allreduce (today's path) on the exact
  // format; for the compressed formats, one-shot for decode-sized messages, ring for the large.
  rules = {};
}

Choice Selection::choose(int ranks, size_t bytes, WireFormat f) const {
  for (const auto& r : rules)
    if (r.ranks == ranks && bytes <= r.up_to_bytes && (f == WireFormat::kDouble || r.algorithm != Algorithm::kMpi))
      return {r.algorithm, r.transport};
  if (f == WireFormat::kDouble) return {Algorithm::kMpi, TransportKind::kMpi};
  return {bytes <= (size_t(256) << 10) ? Algorithm::kOneShot : Algorithm::kRing, TransportKind::kMpi};
}

bool Selection::uses(int ranks, std::optional<TransportKind> t) const {
  for (const auto& r : rules)
    if (r.ranks == ranks && (!t || r.transport == *t)) return true;
  return false;
}

Selection Selection::parse(std::string_view text, const std::string& source) {
  Selection s;
  std::istringstream in{std::string(text)};
  std::string line;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream ls(line);
    std::string ranks, up_to, algo, extra;
    if (!(ls >> ranks)) continue;
    auto bad = [&](const std::string& what) {
      return CollectiveError(source + ":" + std::to_string(no) + ": " + what +
                             "; a rule is `RANKS UP_TO_BYTES|max ALGORITHM [mpi|tcp]` (rerun `clusterctl bench "
                             "net` to write a fresh table)");
    };
    std::string transport;
    if (!(ls >> up_to >> algo) || ((ls >> transport) && (ls >> extra))) throw bad("expected three or four fields");
    SelectionRule r;
    char* end = nullptr;
    const long nr = std::strtol(ranks.c_str(), &end, 10);
    if (*end || nr < 2 || nr > 65536) throw bad("rank count '" + ranks + "' is not a number from 2 to 65536");
    r.ranks = static_cast<int>(nr);
    if (up_to == "max") {
      r.up_to_bytes = std::numeric_limits<size_t>::max();
    } else {
      const unsigned long long b = std::strtoull(up_to.c_str(), &end, 10);
      if (*end || up_to.empty() || up_to[0] == '-') throw bad("size bound '" + up_to + "' is not a byte count");
      r.up_to_bytes = b;
    }
    const auto a = parse_algorithm(algo);
    if (!a) throw bad("unknown algorithm '" + algo + "' (mpi, one-shot, recursive-doubling, ring)");
    r.algorithm = *a;
    if (!transport.empty()) {
      const auto t = parse_transport(transport);
      if (!t) throw bad("unknown transport '" + transport + "' (mpi, tcp)");
      if (*t == TransportKind::kTcp && *a == Algorithm::kMpi) throw bad("MPI_Allreduce runs over mpi only");
      r.transport = *t;
    }
    s.rules.push_back(r);
  }
  return s;
}

Selection Selection::read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw CollectiveError("cannot read the all-reduce selection table " + path);
  std::string text(size_t(1) << 20, '\0');
  f.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(f.gcount()));
  if (f.gcount() == static_cast<std::streamsize>(size_t(1) << 20) && f.peek() != EOF)
    throw CollectiveError(path + " is over 1 MiB: not an all-reduce selection table");
  return parse(text, path);
}

std::string Selection::to_text() const {
  std::string out =
      "# clusterctl all-reduce selection: RANKS UP_TO_BYTES|max ALGORITHM [TRANSPORT] (first match wins)\n";
  for (const auto& r : rules)
    out += std::to_string(r.ranks) + " " +
           (r.up_to_bytes == std::numeric_limits<size_t>::max() ? std::string("max") : std::to_string(r.up_to_bytes)) +
           " " + std::string(algorithm_name(r.algorithm)) +
           (r.transport == TransportKind::kMpi ? "" : " " + std::string(transport_name(r.transport))) + "\n";
  return out;
}

std::string default_selection_path() {
  if (const char* p = std::getenv("CLUSTERCTL_NET_TABLE"); p && *p) return p;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/clusterctl/allreduce-table";
}

}  // namespace clusterctl::collectives
