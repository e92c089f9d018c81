#include "collectives/mpi/mpi_communicator.h"

#include <mpi.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "collectives/algorithms/allreduce.h"
#include "collectives/algorithms/emulated_link.h"
#include "collectives/algorithms/steady_wait.h"
#include "collectives/error.h"
#include "collectives/tcp/tcp_transport.h"
#include "collectives/wait_policy.h"

namespace clusterctl::collectives {
namespace {

std::string processor_name() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  if (MPI_Get_processor_name(name, &len) != MPI_SUCCESS) return "unknown host";
  return std::string(name, len);
}

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, len);
}

// Counts elements of a collective in ints: MPI's counts are int, so large messages go in pieces.
constexpr size_t kMaxCount = size_t(1) << 30;

// Our algorithms' point-to-point transfers, on a duplicate of MPI_COMM_WORLD (so they never
// match another call's messages). Receives from one peer match in posted order (one tag), as
// Transport promises. Where the ranks fit the cores a wait is MPI_Waitall, which polls (these
// waits are within a step); where they share them (wait_policy.h) Open MPI cannot block, so a
// wait tests and pauses (pause_crowded_wait: yields the core, after 1 ms sleeps) between tests.
class MpiTransport final : public Transport {
  static constexpr int64_t kTestEveryNs = 100'000;

 public:
  explicit MpiTransport(bool poll) : poll_(poll) {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiTransport() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // The overlap thread's waits (MpiCommunicator::start_allreduce_sum) test and sleep: the caller's
  // pool computes meanwhile on every core, and a wait that polled or yielded would take turns on
  // a core with it. Its transfers move at each test, every kBackgroundSleepNs.
  static constexpr int64_t kBackgroundSleepNs = 50'000;
  void set_background(bool background) { background_ = background; }
  // Streaming (the pipelined ring): each transfer is posted at once; a receive's handle is its
  // requests' range, waited for alone.
  bool streams() const override { return true; }
  void begin_stream() override {
    requests_.clear();
    recv_ranges_.clear();
  }
  void post_send(const Transfer& t) override {
    post(t, true);
    bytes_sent += t.bytes;
  }
  size_t post_recv(const Transfer& t) override {
    const size_t first = requests_.size();
    post(t, false);
    recv_ranges_.push_back({first, requests_.size()});
    return recv_ranges_.size() - 1;
  }
  void wait_recv(size_t handle) override {
    const auto range = recv_ranges_[handle];
    wait(requests_.data() + range.first, range.second - range.first);
  }
  void wait_all() override { wait(requests_.data(), requests_.size()); }
  // The link emulator's wait for an arrival time. MPI moves a transfer only inside MPI calls (a
  // rendezvous send goes on when its receiver's answer is read), so a sleep through it would hold
  // this rank's other transfers back until the moment: they are tested every kTestEveryNs until
  // then instead, the rank sleeping in between (a rank that spun here would hold a core that the
  // ranks it waits for may need: ranks may outnumber cores).
  void keep_moving_until(int64_t steady_ns) override {
    for (;;) {
      int all_done = 1;
      const int rc = MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &all_done, MPI_STATUSES_IGNORE);
      if (rc != MPI_SUCCESS) throw CollectiveError("MPI_Testall: " + mpi_error_text(rc));
      if (all_done || steady_ns - steady_now_ns() <= kTestEveryNs + wake_margin_ns())
        return sleep_until_steady_ns(steady_ns);
      std::this_thread::sleep_for(std::chrono::nanoseconds(kTestEveryNs));
    }
  }

  void exchange(std::span<const Transfer> sends, std::span<const Transfer> recvs) override {
    requests_.clear();
    for (const auto& t : recvs) post(t, false);
    for (const auto& t : sends) {
      post(t, true);
      bytes_sent += t.bytes;
    }
    wait(requests_.data(), requests_.size());
  }

 private:
  void wait(MPI_Request* requests, size_t n) {
    const int count = static_cast<int>(n);
    if (poll_ && !background_) {
      const int rc = MPI_Waitall(count, requests, MPI_STATUSES_IGNORE);
      if (rc != MPI_SUCCESS) throw CollectiveError("MPI_Waitall: " + mpi_error_text(rc));
      return;
    }
    const int64_t start = steady_now_ns();
    for (;;) {
      int done = 0;
      const int rc = MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
      if (rc != MPI_SUCCESS) throw CollectiveError("MPI_Testall: " + mpi_error_text(rc));
      if (done) return;
      if (background_)
        std::this_thread::sleep_for(std::chrono::nanoseconds(kBackgroundSleepNs));
      else
        pause_crowded_wait(steady_now_ns() - start);
    }
  }

  void post(const Transfer& t, bool send) {
    auto* p = static_cast<char*>(t.data);
    size_t at = 0;
    do {  // MPI counts are int: larger transfers go in pieces, which arrive in order
      const int count = static_cast<int>(std::min(kMaxCount, t.bytes - at));
      MPI_Request r;
      const int rc = send ? MPI_Isend(p + at, count, MPI_BYTE, t.peer, 17, comm_, &r)
                          : MPI_Irecv(p + at, count, MPI_BYTE, t.peer, 17, comm_, &r);
      if (rc != MPI_SUCCESS)
        throw CollectiveError(std::string(send ? "MPI_Isend" : "MPI_Irecv") + ": " + mpi_error_text(rc));
      requests_.push_back(r);
      at += count;
    } while (at < t.bytes);
  }

  const bool poll_;
  bool background_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<MPI_Request> requests_;
  std::vector<std::pair<size_t, size_t>> recv_ranges_;  // post_recv's handle -> its requests
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const CommOptions& options) : host_(processor_name()) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    const auto f = parse_wire_format(options.wire_format);
    if (!f)
      throw CollectiveError("--wire-format " + options.wire_format +
                            ": unknown; use double (exact, the default), "
                            "float32, bf16 or q8");
    format_ = *f;
    if (options.algorithm != "auto") {
      const auto a = parse_algorithm(options.algorithm);
      if (!a)
        throw CollectiveError("--allreduce " + options.algorithm +
                              ": unknown; use auto, mpi, one-shot, recursive-doubling or ring");
      if (*a == Algorithm::kMpi && format_ != WireFormat::kDouble)
        throw CollectiveError(
            "--allreduce mpi carries only the exact double format; use --wire-format double or "
            "another algorithm");
      forced_ = a;
    }
    if (options.transport != "auto") {
      const auto t = parse_transport(options.transport);
      if (!t) throw CollectiveError("--transport " + options.transport + ": unknown; use auto, mpi or tcp");
      if (*t == TransportKind::kTcp && forced_ == Algorithm::kMpi)
        throw CollectiveError(
            "--allreduce mpi is MPI_Allreduce, which runs over MPI only; use --transport mpi or auto, or "
            "another algorithm with --transport tcp");
      forced_transport_ = t;
    }
    read_selection(options.selection_path);
    if (!options.emulate_link.empty()) link_ = parse_link_spec(options.emulate_link);
    spin_ = ranks_fit_cores(options.core_share);
    if (!known_overlap_mode(options.overlap))
      throw CollectiveError("--overlap-prompt " + options.overlap + ": use auto, on or off");
    transport_ = std::make_unique<MpiTransport>(spin_);  // collective: after every check that can throw
    overlap_ = decide_overlap(options.overlap);
    Transport* t = transport_.get();
    if (link_) {
      emulated_ = std::make_unique<EmulatedLinkTransport>(*transport_, *link_);
      t = emulated_.get();
    }
    reducer_ = std::make_unique<Allreducer>(*t);
    // The tcp mesh only where something runs over it: forced, or the (shared) table names it.
    const bool want_tcp = size_ > 1 && forced_ != Algorithm::kMpi &&
                          (forced_transport_ == TransportKind::kTcp ||
                           (!forced_transport_ && selection_.uses(size_, TransportKind::kTcp)));
    if (want_tcp) {
      tcp_ = std::make_unique<TcpTransport>(rank_, size_, host_, options.tcp_interface, options.tcp_timeout_s,
                                            [](const void* mine, size_t bytes, void* all) {
                                              MPI_Allgather(mine, static_cast<int>(bytes), MPI_BYTE, all,
                                                            static_cast<int>(bytes), MPI_BYTE, MPI_COMM_WORLD);
                                            });
      tcp_->set_spin_ns(spin_ ? TcpTransport::kDefaultSpinNs : 0);
      Transport* tt = tcp_.get();
      if (link_) {
        tcp_emulated_ = std::make_unique<EmulatedLinkTransport>(*tcp_, *link_);
        tt = tcp_emulated_.get();
      }
      tcp_reducer_ = std::make_unique<Allreducer>(*tt);
    }
  }

  // Whether a prompt's all-reduces overlap (CommOptions::overlap): on, off, or auto: where they
  // cross a link (an emulated one, or ranks on more than one node). Ranks that all share one
  // node's memory have little to hide, and the overlap thread would take turns on the cores with
  // the pool. Every rank must cut its prompts alike: the ranks agree (MIN), as their MPI thread
  // level allows.
  bool decide_overlap(const std::string& mode) {
    if (size_ == 1) return false;
    int thread_level = MPI_THREAD_SINGLE, node_size = size_;
    MPI_Query_thread(&thread_level);
    MPI_Comm node = MPI_COMM_NULL;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
      MPI_Comm_size(node, &node_size);
      MPI_Comm_free(&node);
    }
    const bool wanted = mode == "on" || (mode == "auto" && (link_ || node_size < size_));
    int mine = wanted && thread_level >= MPI_THREAD_SERIALIZED ? 1 : 0, all = 0;
    check(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce(overlap)");
    return all == 1;
  }

  // Rank 0's selection table, for every rank: ranks that chose differently would wait in different
  // calls forever, and `clusterctl bench net` writes the table on rank 0's node. A table rank 0
  // cannot read is every rank's error.
  void read_selection(const std::string& selection_path) {
    std::string text, source;
    int64_t len = 0;
    if (rank_ == 0) {
      const std::string path = selection_path.empty() ? default_selection_path() : selection_path;
      if (!selection_path.empty() || ::access(path.c_str(), R_OK) == 0) {
        try {
          selection_ = Selection::read(path);
          text = selection_.to_text();
          source = path;
          len = static_cast<int64_t>(text.size());
        } catch (const std::exception& e) {
          text = e.what();
          len = -static_cast<int64_t>(text.size()) - 1;
        }
      }
    }
    if (size_ > 1) {
      MPI_Bcast(&len, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
      const size_t bytes = static_cast<size_t>(len < 0 ? -len - 1 : len);
      text.resize(bytes);
      if (bytes) MPI_Bcast(text.data(), static_cast<int>(bytes), MPI_CHAR, 0, MPI_COMM_WORLD);
    }
    if (len < 0) throw CollectiveError(rank_ == 0 ? text : "rank 0: " + text);
    if (len > 0) {
      if (rank_ != 0) selection_ = Selection::parse(text, "rank 0's selection table");
      table_ = rank_ == 0 ? source : "rank 0's table";
    }
  }

  ~MpiCommunicator() override {
    {
      std::lock_guard lock(watch_mutex_);
      stop_watch_ = true;
    }
    watch_cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    {
      std::lock_guard lock(overlap_mutex_);
      stop_overlap_ = true;
    }
    overlap_cv_.notify_all();
    if (overlap_thread_.joinable()) overlap_thread_.join();
  }

  void set_stall_timeout(double step_seconds, double next_step_seconds) override {
    step_timeout_ns_ = static_cast<int64_t>(std::max(0.0, step_seconds) * 1e9);
    next_step_timeout_ns_ = static_cast<int64_t>(std::max(0.0, next_step_seconds) * 1e9);
    if ((step_timeout_ns_ > 0 || next_step_timeout_ns_ > 0) && !watchdog_.joinable() && size_ > 1)
      watchdog_ = std::thread([this] { watch(); });
  }

  // A non-root rank may wait here for as long as rank 0's server idles. MPI_Bcast would poll a
  // whole core all that time (Open MPI's blocking calls busy-poll; mpi_yield_when_idle only
  // yields), so every rank posts MPI_Ibcast and the waiting ones test it: for the first kSpinNs
  // (a decode loop's next header comes within it) without pause where the ranks fit the cores, or
  // sleeping kFirstSleepNs between tests where they share them (wait_policy.h: a polling rank
  // would hold the core rank 0 needs to make the header), then sleeping between tests, the sleeps
  // growing to kMaxSleepNs. Each call starts again, so traffic resets the back-off.
  void broadcast_next_step(void* data, size_t bytes, int root) override {
    if (size_ == 1) return;
    drain();
    if (bytes > kMaxCount)
      throw CollectiveError("a step header of " + std::to_string(bytes) + " bytes exceeds MPI's count limit");
    waiting_for_root_ = rank_ != root;
    // No settling here: a rank would wait in its blocking all-reduce, polling a core, for as long as
    // rank 0 idles. The next call settles (the same one on every rank).
    Timer t(*this, "MPI_Bcast", /*may_settle=*/false);
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD, &request), "MPI_Ibcast");
    wait_politely(request, "MPI_Ibcast");
    waiting_for_root_ = false;
    if (rank_ == root) stats_.bytes_sent += bytes * (size_ - 1);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend_name() const override { return "mpi"; }

  std::string describe() const override {
    std::string d = "mpi; all-reduce ";
    const bool measured = selection_.uses(size_);
    d += forced_
             ? std::string(algorithm_name(*forced_))
             : "auto (" +
                   (table_.empty()
                        ? std::string("default table")
                        : table_ + (measured ? ", rules for " : ", no rule for ") + std::to_string(size_) + " ranks") +
                   ")";
    d += forced_transport_ ? " over " + std::string(transport_name(*forced_transport_))
                           : std::string(tcp_ ? " over mpi or tcp by size" : " over mpi");
    if (tcp_) d += " (" + tcp_->address() + ")";
    d += ", wire format " + std::string(wire_format_name(format_));
    if (link_) d += "; " + clusterctl::collectives::describe(*link_);
    return d;
  }

  // The algorithm and transport this call runs: the forced ones, else the table's for this size.
  // Under an emulated link MPI_Allreduce's own messages cannot be held back, and over tcp it does
  // not run, so there it is replaced by our recursive doubling (below 64 KiB, as Open MPI's tuned
  // choice) or ring.
  Choice choose(size_t bytes) const {
    Choice c = selection_.choose(size_, bytes, format_);
    if (forced_) c.algorithm = *forced_;
    if (forced_transport_) c.transport = *forced_transport_;
    if (c.algorithm == Algorithm::kMpi && (link_ || c.transport == TransportKind::kTcp))
      c.algorithm = bytes < (size_t(64) << 10) ? Algorithm::kRecursiveDoubling : Algorithm::kRing;
    if (!tcp_) c.transport = TransportKind::kMpi;
    return c;
  }

  void allreduce_sum(float* data, size_t n) override {
    drain();
    if (choose(n * 8).algorithm == Algorithm::kMpi) return sum(data, n, MPI_FLOAT);
    float_tmp_.assign(data, data + n);
    allreduce_sum(float_tmp_.data(), n);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<float>(float_tmp_[i]);
  }
  void allreduce_sum(double* data, size_t n) override {
    drain();
    const Choice c = choose(n * 8);
    if (c.algorithm == Algorithm::kMpi) return sum(data, n, MPI_DOUBLE);
    Timer t(*this, c.transport == TransportKind::kTcp ? "all-reduce (tcp)" : "all-reduce");
    run_ours(c, data, n, stats_);
  }

  // One thread (started at the first overlapped call) runs the started all-reduces in order while
  // the caller's pool computes. The caller makes no MPI call until they are done (every other call
  // drains them first), so the job needs only MPI_THREAD_SERIALIZED. That thread's waits test and
  // sleep (MpiTransport::set_background; the tcp transport blocks in poll()): the pool computing
  // beside it needs every core. Its calls are not logged one by one (their time is mostly hidden);
  // the caller's wait for them is, as one call.
  bool overlaps() const override { return overlap_; }
  void start_allreduce_sum(double* data, size_t n) override {
    if (!overlap_) return allreduce_sum(data, n);
    std::lock_guard lock(overlap_mutex_);
    if (!overlap_thread_.joinable()) overlap_thread_ = std::thread([this] { run_overlapped(); });
    overlap_queue_.push_back({data, n});
    overlap_cv_.notify_all();
  }
  void wait_allreduces() override {
    if (!overlap_) return;
    {
      std::lock_guard lock(overlap_mutex_);
      if (overlap_queue_.empty() && !overlap_error_) return;
    }
    {
      Timer t(*this, "all-reduce (overlapped)", /*may_settle=*/false);
      drain();
    }
    settle_if_full();  // here, with the thread idle: a prompt may make no other call for long
  }

  void broadcast(void* data, size_t bytes, int root) override {
    drain();
    Timer t(*this, "MPI_Bcast");
    auto* p = static_cast<char*>(data);
    for (size_t at = 0; at < bytes; at += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, bytes - at));
      check(MPI_Bcast(p + at, count, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
    if (rank_ == root) stats_.bytes_sent += bytes * (size_ - 1);
  }

  void gather(const void* send, size_t bytes, void* recv, int root) override {
    drain();
    Timer t(*this, "MPI_Gather");
    if (bytes > kMaxCount)
      throw CollectiveError("gather of " + std::to_string(bytes) + " bytes per rank exceeds MPI's count limit");
    check(MPI_Gather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes), MPI_BYTE, root,
                     MPI_COMM_WORLD),
          "MPI_Gather");
    if (rank_ != root) stats_.bytes_sent += bytes;
  }

  void argmax(float& value, int64_t& index) override {
    drain();
    Timer t(*this, "MPI_Allreduce(MAXLOC)");
    // MPI_FLOAT_INT carries an int index: vocabularies fit; MAXLOC keeps the lowest index on ties.
    struct {
      float value;
      int index;
    } in{value, static_cast<int>(index)}, out{};
    check(MPI_Allreduce(&in, &out, 1, MPI_FLOAT_INT, MPI_MAXLOC, MPI_COMM_WORLD), "MPI_Allreduce(MAXLOC)");
    stats_.bytes_sent += size_ > 1 ? sizeof in : 0;
    value = out.value;
    index = out.index;
  }

  void barrier() override {
    drain();
    Timer t(*this, "MPI_Barrier");
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }

 protected:
  void min_over_ranks(double* data, size_t n) override {
    drain();
    check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD),
          "MPI_Allreduce(MIN)");
  }

 private:
  // Times a collective call into the stats and shows it to the stall watchdog.
  struct Timer {
    MpiCommunicator& c;
    const char* call;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    Timer(MpiCommunicator& comm, const char* name, bool may_settle = true) : c(comm), call(name) {
      const int64_t timeout = c.waiting_for_root_ ? c.next_step_timeout_ns_ : c.step_timeout_ns_;
      if (timeout > 0) {
        c.watched_call_.store(call, std::memory_order_relaxed);
        c.watched_for_root_.store(c.waiting_for_root_, std::memory_order_relaxed);
        c.watched_timeout_ns_.store(timeout, std::memory_order_relaxed);
        c.watched_since_ns_.store(steady_now_ns(), std::memory_order_release);
      }
      if (may_settle) c.settle_if_full();
    }
    ~Timer() {
      c.watched_since_ns_.store(0, std::memory_order_release);
      c.record_call(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  };

  // Our algorithms' all-reduce of data over c's transport, its bytes and emulated arrivals counted
  // into `into` (stats_, or the overlap thread's own until the caller's wait adds them).
  void run_ours(const Choice& c, double* data, size_t n, CommStats& into) {
    const bool tcp = c.transport == TransportKind::kTcp;
    into.allreduce_calls++;
    Transport& wire = tcp ? static_cast<Transport&>(*tcp_) : *transport_;
    const uint64_t before = wire.bytes_sent;
    const Transport* held = tcp ? tcp_emulated_.get() : emulated_.get();
    const uint64_t arrivals = held ? held->emulated_arrivals : 0, late = held ? held->emulated_late_arrivals : 0;
    (tcp ? *tcp_reducer_ : *reducer_).run(c.algorithm, format_, data, n);
    into.bytes_sent += wire.bytes_sent - before;
    if (held) {
      into.emulated_arrivals += held->emulated_arrivals - arrivals;
      into.emulated_late_arrivals += held->emulated_late_arrivals - late;
    }
  }

  // The overlap thread: each started all-reduce in turn, its waits sleeping between tests.
  // MPI_Allreduce becomes MPI_Iallreduce tested between sleeps (the same exact sums: the partials
  // of the exact format add exactly in any order). An error stops the thread's work; the caller's
  // wait throws it.
  void run_overlapped() {
    std::unique_lock lock(overlap_mutex_);
    for (;;) {
      overlap_cv_.wait(lock, [&] { return stop_overlap_ || (!overlap_queue_.empty() && !overlap_busy_); });
      if (stop_overlap_) return;
      const OverlapCall call = overlap_queue_.front();
      overlap_busy_ = true;
      lock.unlock();
      std::exception_ptr error;
      try {
        reduce_overlapped(call.data, call.n);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      overlap_busy_ = false;
      overlap_queue_.pop_front();
      if (error) {
        overlap_error_ = error;
        overlap_queue_.clear();
      }
      overlap_cv_.notify_all();
    }
  }

  void reduce_overlapped(double* data, size_t n) {
    const Choice c = choose(n * 8);
    if (c.algorithm == Algorithm::kMpi) {
      for (size_t at = 0; at < n; at += kMaxCount) {
        const int count = static_cast<int>(std::min(kMaxCount, n - at));
        MPI_Request request = MPI_REQUEST_NULL;
        check(MPI_Iallreduce(MPI_IN_PLACE, data + at, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &request),
              "MPI_Iallreduce");
        for (int done = 0;;) {
          check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Iallreduce");
          if (done) break;
          std::this_thread::sleep_for(std::chrono::nanoseconds(MpiTransport::kBackgroundSleepNs));
        }
      }
      overlap_stats_.allreduce_calls++;
      overlap_stats_.bytes_sent += ring_bytes(n * sizeof(double));
      return;
    }
    transport_->set_background(true);
    const int64_t tcp_spin = tcp_ ? tcp_->spin_ns() : 0;
    if (tcp_) tcp_->set_spin_ns(0);
    struct Restore {
      MpiCommunicator& c;
      int64_t tcp_spin;
      ~Restore() {
        c.transport_->set_background(false);
        if (c.tcp_) c.tcp_->set_spin_ns(tcp_spin);
      }
    } restore{*this, tcp_spin};
    run_ours(c, data, n, overlap_stats_);
  }

  // Waits until the started all-reduces are done, adds their counts to the stats, and throws the
  // error one of them met.
  void drain() {
    if (!overlap_) return;
    std::unique_lock lock(overlap_mutex_);
    overlap_cv_.wait(lock, [&] { return overlap_queue_.empty() && !overlap_busy_; });
    stats_.allreduce_calls += overlap_stats_.allreduce_calls;
    stats_.overlapped_calls += overlap_stats_.allreduce_calls;
    stats_.bytes_sent += overlap_stats_.bytes_sent;
    stats_.emulated_arrivals += overlap_stats_.emulated_arrivals;
    stats_.emulated_late_arrivals += overlap_stats_.emulated_late_arrivals;
    overlap_stats_ = {};
    if (overlap_error_) std::rethrow_exception(std::exchange(overlap_error_, nullptr));
  }

  // The stall watchdog's thread: it never calls MPI (only the caller's thread and, while it waits
  // for them, the overlap thread do); it ends the process, and mpirun, seeing a rank gone, ends the
  // rest.
  void watch() {
    std::unique_lock lock(watch_mutex_);
    while (!watch_cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stop_watch_; })) {
      const int64_t since = watched_since_ns_.load(std::memory_order_acquire);
      if (since == 0 || steady_now_ns() - since < watched_timeout_ns_.load(std::memory_order_relaxed)) continue;
      const double waited = static_cast<double>(steady_now_ns() - since) / 1e9;
      if (watched_for_root_.load(std::memory_order_relaxed))
        std::fprintf(stderr,
                     "error: %s: rank 0 has sent no step for %.0f s, though it sends one (or a heartbeat when "
                     "idle) far more often: rank 0 is hung, stopped, or its node is cut off from the network "
                     "without the connection closing. Ending the job; check rank 0's node, or raise "
                     "--step-timeout if rank 0 can rightly be this slow.\n",
                     rank_name(rank_, host_).c_str(), waited);
      else
        std::fprintf(stderr,
                     "error: %s: %s has waited %.0f s for the other ranks of this step: one of them stopped "
                     "making progress (hung, stopped, or its node cut off from the network without the connection "
                     "closing). Ending the job; check the other ranks' nodes, or raise --step-timeout if a step "
                     "can rightly take this long.\n",
                     rank_name(rank_, host_).c_str(), watched_call_.load(std::memory_order_relaxed), waited);
      std::fflush(stderr);
      ::_exit(3);
    }
  }

  static constexpr int64_t kSpinNs = 2'000'000;       // 2 ms of MPI_Test (or 20 us sleeps) before the back-off
  static constexpr int64_t kFirstSleepNs = 20'000;    // then 20 us, doubling...
  static constexpr int64_t kMaxSleepNs = 10'000'000;  // ...up to 10 ms: ~100 wake-ups a second when idle

  void wait_politely(MPI_Request& request, const char* call) {
    const int64_t t0 = steady_now_ns();
    int64_t sleep_ns = kFirstSleepNs;
    for (;;) {
      int done = 0;
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), call);
      if (done) return;
      if (steady_now_ns() - t0 < kSpinNs) {
        if (!spin_) std::this_thread::sleep_for(std::chrono::nanoseconds(kFirstSleepNs));
        continue;
      }
      std::this_thread::sleep_for(std::chrono::nanoseconds(sleep_ns));
      sleep_ns = std::min(sleep_ns * 2, kMaxSleepNs);
    }
  }

  template <typename T>
  void sum(T* data, size_t n, MPI_Datatype type) {
    Timer t(*this, "MPI_Allreduce");
    stats_.allreduce_calls++;
    for (size_t at = 0; at < n; at += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - at));
      check(MPI_Allreduce(MPI_IN_PLACE, data + at, count, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    }
    stats_.bytes_sent += ring_bytes(n * sizeof(T));
  }

  // Bytes this rank puts on the wire for a ring all-reduce of `bytes`: 2 (N-1)/N of them (what
  // MPI_Allreduce's large messages cost; counted the same for every size).
  uint64_t ring_bytes(size_t bytes) const { return size_ > 1 ? 2 * (size_ - 1) * bytes / size_ : 0; }

  void check(int rc, const char* call) const {
    if (rc != MPI_SUCCESS)
      throw CollectiveError(std::string(call) + " failed on " + rank_name(rank_, host_) + ": " + mpi_error_text(rc) +
                            " (another rank has probably stopped; see its message)");
  }

  int rank_ = 0, size_ = 1;
  std::string host_;
  bool spin_ = true;  // the ranks fit the cores: a wait may poll (wait_policy.h)
  WireFormat format_ = WireFormat::kDouble;
  std::optional<Algorithm> forced_;
  Selection selection_;
  std::string table_;
  std::optional<LinkSpec> link_;
  std::unique_ptr<MpiTransport> transport_;
  std::unique_ptr<EmulatedLinkTransport> emulated_;
  std::unique_ptr<Allreducer> reducer_;
  std::optional<TransportKind> forced_transport_;
  std::unique_ptr<TcpTransport> tcp_;  // the mesh, where something runs over it
  std::unique_ptr<EmulatedLinkTransport> tcp_emulated_;
  std::unique_ptr<Allreducer> tcp_reducer_;
  std::vector<double> float_tmp_;
  bool waiting_for_root_ = false;             // a non-root rank inside broadcast_next_step
  std::atomic<int64_t> watched_since_ns_{0};  // 0: in no watched call
  std::atomic<const char*> watched_call_{""};
  std::atomic<bool> watched_for_root_{false};
  std::atomic<int64_t> watched_timeout_ns_{0};
  int64_t step_timeout_ns_ = 0, next_step_timeout_ns_ = 0;
  std::mutex watch_mutex_;
  std::condition_variable watch_cv_;
  bool stop_watch_ = false;
  std::thread watchdog_;
  struct OverlapCall {
    double* data;
    size_t n;
  };
  bool overlap_ = false;  // CommOptions::overlap, on more than one rank, with MPI_THREAD_SERIALIZED
  std::mutex overlap_mutex_;
  std::condition_variable overlap_cv_;
  std::deque<OverlapCall> overlap_queue_;  // started, not done; the front one runs while overlap_busy_
  bool overlap_busy_ = false, stop_overlap_ = false;
  std::exception_ptr overlap_error_;
  CommStats overlap_stats_;  // the overlap thread's counts, until drain() adds them
  std::thread overlap_thread_;
};

class MpiSession final : public Session {
 public:
  MpiSession(int& argc, char**& argv) {
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
      throw CollectiveError("MPI_Init_thread failed: start the worker with mpirun, or check the Open MPI installation");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    host_ = processor_name();
  }
  ~MpiSession() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& host() const override { return host_; }
  std::unique_ptr<Communicator> make_communicator(const CommOptions& options) override {
    return std::make_unique<MpiCommunicator>(options);
  }
  [[noreturn]] void abort_job(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  int rank_ = 0, size_ = 1;
  std::string host_;
};

}  // namespace

std::unique_ptr<Session> open_mpi_session(int& argc, char**& argv) { return std::make_unique<MpiSession>(argc, argv); }

std::unique_ptr<Transport> make_mpi_transport(bool poll) { return std::make_unique<MpiTransport>(poll); }

}  // namespace clusterctl::collectives
