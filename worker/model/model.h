#pragma once
// A loaded model as one rank sees it: hyperparameters, architecture, its Partition and the
// weights of that Partition (mapped from the GGUF file, which must outlive the Model).
#include "worker/gguf/gguf_file.h"
#include "worker/model/architecture.h"
#include "worker/model/hparams.h"
#include "worker/model/partition.h"
#include "worker/model/rope.h"
#include "worker/model/weights.h"

namespace clusterctl::model {

struct Model {
  const gguf::GgufFile* file = nullptr;
  HParams hp;
  const Architecture* arch = nullptr;
  Partition part;
  ModelWeights weights;
  Rope rope;

  // Throws clusterctl::Error for an unsupported architecture, a missing tensor, an
  // unsupported type or a shape that disagrees with the metadata.
  static Model load(const gguf::GgufFile& f, const Partition& part);
  static Model load(const gguf::GgufFile& f) { return load(f, Partition::whole(read_hparams(f))); }
  // The hyperparameters, after refusing an unsupported architecture by name.
  static HParams read_hparams(const gguf::GgufFile& f);
};

}  // namespace clusterctl::model
