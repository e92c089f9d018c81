// ERNIE 4.5 dense (ERNIE-4.5-0.3B): Llama's layer (RoPE on adjacent pairs, no biases, SwiGLU),
// with query heads that may outsize the width (16 x 128 over 1024) and a tied LM head. The GGUF
// format allows a bias on attn_output that no released dense ERNIE 4.5 uses; it is refused.
#include "worker/common/error.h"
#include "worker/model/architecture.h"
#include "worker/model/forward.h"

namespace clusterctl::model {
namespace {

void read_hparams(const gguf::GgufFile& f, HParams&) {
  if (f.find_tensor("blk.0.attn_output.bias"))
    throw Error(f.path() +
                ": this ernie4_5 file has attn_output biases, which clusterctl does not compute yet; "
                "use a file without them (the released ERNIE-4.5 dense models have none)");
}

}  // namespace

const Architecture& ernie4_5_architecture() {
  static const Architecture a{.name = "ernie4_5",
                              .rope = RopeLayout::Adjacent,
                              .read_hparams = read_hparams,
                              .tensors = [](const HParams& hp) { return decoder_tensors(hp, {}); },
                              .layer = decoder_layer};
  return a;
}

}  // namespace clusterctl::model
