#include <cstring>

#include "collectives/communicator.h"

namespace clusterctl::collectives {
namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend_name() const override { return "local"; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void gather(const void* send, size_t bytes, void* recv, int) override {
    if (send != recv) std::memcpy(recv, send, bytes);
  }
  void argmax(float&, int64_t&) override {}
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

}  // namespace clusterctl::collectives
