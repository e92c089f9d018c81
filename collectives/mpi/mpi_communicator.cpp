#include "collectives/mpi/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "worker/common/error.h"

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

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() : host_(processor_name()) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend_name() const override { return "mpi"; }

  void allreduce_sum(float* data, size_t n) override { sum(data, n, MPI_FLOAT); }
  void allreduce_sum(double* data, size_t n) override { sum(data, n, MPI_DOUBLE); }

  void broadcast(void* data, size_t bytes, int root) override {
    Timer t(stats_);
    auto* p = static_cast<char*>(data);
    for (size_t at = 0; at < bytes; at += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, bytes - at));
      check(MPI_Bcast(p + at, count, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
    if (rank_ == root) stats_.bytes_sent += bytes * (size_ - 1);
  }

  void gather(const void* send, size_t bytes, void* recv, int root) override {
    Timer t(stats_);
    if (bytes > kMaxCount) throw Error("gather of " + std::to_string(bytes) + " bytes per rank exceeds MPI's count limit");
    check(MPI_Gather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes), MPI_BYTE, root,
                     MPI_COMM_WORLD),
          "MPI_Gather");
    if (rank_ != root) stats_.bytes_sent += bytes;
  }

  void argmax(float& value, int64_t& index) override {
    Timer t(stats_);
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
    Timer t(stats_);
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }

 private:
  struct Timer {
    CommStats& s;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    explicit Timer(CommStats& st) : s(st) {}
    ~Timer() { s.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
  };

  template <typename T>
  void sum(T* data, size_t n, MPI_Datatype type) {
    Timer t(stats_);
    stats_.allreduce_calls++;
    for (size_t at = 0; at < n; at += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - at));
      check(MPI_Allreduce(MPI_IN_PLACE, data + at, count, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    }
    // Bytes this rank puts on the wire for a ring all-reduce: 2 (N-1)/N of the buffer.
    stats_.bytes_sent += size_ > 1 ? 2 * (size_ - 1) * n * sizeof(T) / size_ : 0;
  }

  void check(int rc, const char* call) const {
    if (rc != MPI_SUCCESS)
      throw Error(std::string(call) + " failed on " + rank_name(rank_, host_) + ": " + mpi_error_text(rc) +
                  " (another rank has probably stopped; see its message)");
  }

  int rank_ = 0, size_ = 1;
  std::string host_;
};

}  // namespace

std::string rank_name(int rank, const std::string& host) { return "rank " + std::to_string(rank) + " on " + host; }

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

MpiSession::MpiSession(int& argc, char**& argv) {
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    throw Error("MPI_Init_thread failed: start the worker with mpirun, or check the Open MPI installation");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  host_ = processor_name();
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort_job(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace clusterctl::collectives
