#pragma once
// matmul and matmul_row_parallel for Layout::Packed8 matrices (called by matmul.cpp).
#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::detail {

void matmul_packed(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Workspace& ws);
void matmul_row_parallel_packed(const Matrix& w, int64_t chunk, const float* x, int64_t n_tokens, double* y,
                                ThreadPool& pool, Workspace& ws, const float* token_scale);

}  // namespace clusterctl::kernels::detail
