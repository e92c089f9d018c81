#pragma once
// All-reduce algorithms of our own beside the backend's (MPI_Allreduce), over any transport that
// can post point-to-point transfers (MPI_Isend/Irecv in the mpi backend, a link emulator around
// it), in a choice of wire formats. Every algorithm leaves every rank with the same bits: values
// are rounded to the wire format wherever they leave a rank (the sender keeps the rounded value
// too), and each sum adds its operands in a fixed order. With the exact double format the sums of
// the row-parallel partials (floats added in double, kernels::matmul_row_parallel) are exact, so
// any algorithm gives one rank's result bit for bit.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace clusterctl::collectives {

enum class Algorithm {
  kMpi,                // the backend's own all-reduce (MPI_Allreduce): today's path
  kOneShot,            // every rank sends its vector to every other, sums in rank order: one hop
  kRecursiveDoubling,  // log2 N exchanges of the whole vector (non-powers of two: a fold-in hop before, one after)
  kRing,               // reduce-scatter then all-gather around the ring: 2 (N-1) hops of 1/N of the vector
};
inline constexpr Algorithm kAlgorithms[] = {Algorithm::kMpi, Algorithm::kOneShot, Algorithm::kRecursiveDoubling,
                                            Algorithm::kRing};
std::string_view algorithm_name(Algorithm a);  // "mpi", "one-shot", "recursive-doubling", "ring"
std::optional<Algorithm> parse_algorithm(std::string_view name);

enum class WireFormat {
  kDouble,   // exact (the default): N ranks give 1 rank's result bit for bit
  kFloat32,  // each value rounded to float where it leaves a rank
  kBf16,     // bfloat16 (round to nearest even)
  kQ8Block,  // blocks of 32 values: a float scale (absmax / 127) and 32 int8
};
inline constexpr WireFormat kWireFormats[] = {WireFormat::kDouble, WireFormat::kFloat32, WireFormat::kBf16,
                                              WireFormat::kQ8Block};
std::string_view wire_format_name(WireFormat f);  // "double", "float32", "bf16", "q8"
std::optional<WireFormat> parse_wire_format(std::string_view name);
// Bytes of n values on the wire.
size_t wire_bytes(WireFormat f, size_t n);
// Encodes n values into wire_bytes(f, n) bytes, and back.
void encode(WireFormat f, const double* x, size_t n, uint8_t* out);
void decode(WireFormat f, const uint8_t* in, size_t n, double* out);

// What carries our algorithms' messages: MPI point-to-point (the mpi backend's own connections) or
// the backend's own full mesh of TCP sockets (collectives/tcp). MPI_Allreduce is always on MPI.
enum class TransportKind { kMpi, kTcp };
inline constexpr TransportKind kTransportKinds[] = {TransportKind::kMpi, TransportKind::kTcp};
std::string_view transport_name(TransportKind t);  // "mpi", "tcp"
std::optional<TransportKind> parse_transport(std::string_view name);

// One point-to-point transfer of an exchange.
struct Transfer {
  int peer = 0;
  void* data = nullptr;
  size_t bytes = 0;
};

// What the algorithms need of a backend: post sends and receives to peers, wait for all.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Returns when every send has left and every receive has arrived. Between two ranks, transfers
  // arrive in the order they were posted.
  virtual void exchange(std::span<const Transfer> sends, std::span<const Transfer> recvs) = 0;
  // Streaming, for the pipelined ring: begin_stream, then post transfers one at a time (each
  // peer's in posted order, as above), wait for a receive by the handle post_recv returned while
  // everything posted keeps moving, and end with wait_all. A transport without it says false and
  // the ring runs step by step with exchange().
  virtual bool streams() const { return false; }
  virtual void begin_stream() {}
  virtual void post_send(const Transfer& t) { (void)t; }
  virtual size_t post_recv(const Transfer& t) { return (void)t, 0; }
  virtual void wait_recv(size_t handle) { (void)handle; }
  virtual void wait_all() {}
  // Returns when the steady clock (steady_wait.h) reads `steady_ns`, moving the posted transfers
  // meanwhile where the transport can (the link emulator's wait for a message's arrival time must
  // not stall this rank's other transfers); the default only sleeps.
  virtual void keep_moving_until(int64_t steady_ns);
  uint64_t bytes_sent = 0;
  // A link emulator's receives, and those whose real transfer ended after their emulated arrival
  // time: there this machine's own transport, not the emulated link, set the pace.
  uint64_t emulated_arrivals = 0, emulated_late_arrivals = 0;
};

// The algorithms with their scratch buffers (reused from call to call).
class Allreducer {
 public:
  explicit Allreducer(Transport& t) : t_(t) {}
  // In place; `a` is not kMpi.
  void run(Algorithm a, WireFormat f, double* data, size_t n);

 private:
  void one_shot(WireFormat f, double* data, size_t n);
  void recursive_doubling(WireFormat f, double* data, size_t n);
  void ring(WireFormat f, double* data, size_t n);
  void pipelined_ring(WireFormat f, double* data, size_t n);
  Transport& t_;
  std::vector<uint8_t> send_, recv_;
  std::vector<double> tmp_;
};

// Which algorithm over which transport for a message of `bytes` (of doubles, before any wire
// format) on `ranks` ranks: a default table, or one `clusterctl bench net` measured and wrote. File
// format, one rule a line (# comments): `RANKS UP_TO_BYTES|max ALGORITHM [mpi|tcp]` (no transport:
// mpi); the first rule of the job's rank count whose bound holds wins; rank counts without rules
// use the default.
struct SelectionRule {
  int ranks = 0;
  size_t up_to_bytes = 0;  // SIZE_MAX: any size
  Algorithm algorithm = Algorithm::kMpi;
  TransportKind transport = TransportKind::kMpi;
};
struct Choice {
  Algorithm algorithm = Algorithm::kMpi;
  TransportKind transport = TransportKind::kMpi;
};
class Selection {
 public:
  Selection();  // the default table
  // Throws CollectiveError naming the file, line and what is wrong (bounded: at most 1 MiB).
  static Selection read(const std::string& path);
  static Selection parse(std::string_view text, const std::string& source);
  std::string to_text() const;
  Choice choose(int ranks, size_t bytes, WireFormat f) const;
  // Whether any rule is for `ranks` ranks (one run of `bench net` measures one count), and with
  // `t`, whether one of them runs over it (the tcp mesh is only set up when one does).
  bool uses(int ranks, std::optional<TransportKind> t = std::nullopt) const;
  std::vector<SelectionRule> rules;
};

// Where `clusterctl bench net` writes its table and the workers read it: $CLUSTERCTL_NET_TABLE,
// else $HOME/.config/clusterctl/allreduce-table.
std::string default_selection_path();

}  // namespace clusterctl::collectives
