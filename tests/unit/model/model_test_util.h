#pragma once
// Helpers shared by the model tests: an in-process communicator that really sums across
// threads (one thread per rank), so tensor-parallel splits can be checked without MPI.
#include <barrier>
#include <cstring>
#include <memory>
#include <vector>

#include "collectives/communicator.h"

namespace clusterctl::test {

// The state the ranks of one in-process group share.
struct ThreadGroup {
  explicit ThreadGroup(int n) : size(n), sync(n), ptrs(n), values(n), indices(n) {}
  int size;
  std::barrier<> sync;
  std::vector<void*> ptrs;
  std::vector<float> values;
  std::vector<int64_t> indices;
};

class ThreadCommunicator : public collectives::Communicator {
 public:
  ThreadCommunicator(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.size; }
  std::string backend_name() const override { return "threads (test)"; }

  // Every rank sums all ranks' buffers in rank order, so all end bit-identical (as MPI's
  // reductions guarantee), then overwrites its own buffer once everyone has read.
  void allreduce_sum(float* data, size_t n) override { sum(data, n, sum_); }
  void allreduce_sum(double* data, size_t n) override { sum(data, n, sum_double_); }
  void broadcast(void* data, size_t bytes, int root) override {
    g_.ptrs[rank_] = data;
    g_.sync.arrive_and_wait();
    if (rank_ != root) std::memcpy(data, g_.ptrs[root], bytes);
    g_.sync.arrive_and_wait();
  }
  void gather(const void* send, size_t bytes, void* recv, int root) override {
    g_.ptrs[rank_] = const_cast<void*>(send);
    g_.sync.arrive_and_wait();
    if (rank_ == root)
      for (int r = 0; r < g_.size; ++r) std::memcpy(static_cast<char*>(recv) + r * bytes, g_.ptrs[r], bytes);
    g_.sync.arrive_and_wait();
  }
  void argmax(float& value, int64_t& index) override {
    g_.values[rank_] = value;
    g_.indices[rank_] = index;
    g_.sync.arrive_and_wait();
    for (int r = 0; r < g_.size; ++r)
      if (g_.values[r] > value || (g_.values[r] == value && g_.indices[r] < index)) {
        value = g_.values[r];
        index = g_.indices[r];
      }
    g_.sync.arrive_and_wait();
  }
  void barrier() override { g_.sync.arrive_and_wait(); }

 private:
  template <typename T>
  void sum(T* data, size_t n, std::vector<T>& acc) {
    g_.ptrs[rank_] = data;
    g_.sync.arrive_and_wait();
    acc.assign(n, T{0});
    for (int r = 0; r < g_.size; ++r) {
      const T* src = static_cast<const T*>(g_.ptrs[r]);
      for (size_t i = 0; i < n; ++i) acc[i] += src[i];
    }
    g_.sync.arrive_and_wait();
    std::memcpy(data, acc.data(), n * sizeof(T));
    ++stats_.allreduce_calls;
  }

  ThreadGroup& g_;
  int rank_;
  std::vector<float> sum_;
  std::vector<double> sum_double_;
};

}  // namespace clusterctl::test
