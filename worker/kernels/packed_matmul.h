#pragma once
// matmul and matmul_row_parallel for Layout::Q4_0x8 matrices (called by matmul.cpp).
#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::detail {

void matmul_q4_0x8(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Workspace& ws);
void matmul_row_parallel_q4_0x8(const Matrix& w, int64_t chunk, const float* x, int64_t n_tokens, double* y,
                                ThreadPool& pool, Workspace& ws);

}  // namespace clusterctl::kernels::detail
