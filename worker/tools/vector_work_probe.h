#pragma once
// What a node's threads achieve on a forward pass's work besides its matmuls, measured with the
// engine's own code: a query head's attention (model::attend_head over an F16 cache, as the
// engine's default cache) and the element-wise loops (SwiGLU's silu(gate) * up, RMS norms). Each
// figure is one thread's while every thread of the pool does the same work, as a pass's
// attention and element-wise loops keep them all busy. `doctor` records them for plan, which
// counts a pass's heads, positions and elements (controller/placement/throughput_model.h).
#include <string>

#include "worker/kernels/thread_pool.h"

namespace clusterctl::tools {

struct VectorWorkRates {
  // One head of one token attending n positions: head_ns + n position_ns, at head dimensions 64
  // and 128 (fitted through a decode-shaped 64 positions and a prompt-shaped 512).
  double attention_head_ns[2] = {0, 0}, attention_position_ns[2] = {0, 0};
  double silu_ns = 0;  // one element of silu(gate) * up
  double norm_ns = 0;  // one element of an RMS norm
};

// The fastest of `reps` repetitions of each (a few ms each).
VectorWorkRates measure_vector_work(kernels::ThreadPool& pool, int reps);
std::string vector_work_method(int reps);

}  // namespace clusterctl::tools
