// libFuzzer target for the GGUF reader: any byte string must either parse or throw
// clusterctl::Error; never crash, leak, or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <span>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/hparams.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clusterctl;
  try {
    auto f = gguf::GgufFile::from_memory(std::span<const uint8_t>(data, size), "fuzz.gguf");
    for (const auto& [key, value] : f->metadata()) (void)value.to_display();
    uint64_t sum = 0;
    for (const auto& t : f->tensors()) {
      auto bytes = f->tensor_data(t);
      if (!bytes.empty()) sum += bytes.front() + bytes.back();
    }
    (void)sum;
    try {
      (void)model::HParams::from_gguf(*f);
    } catch (const Error&) {
    }
  } catch (const Error&) {
  }
  return 0;
}
