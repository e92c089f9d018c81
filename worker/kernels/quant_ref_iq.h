#pragma once
// Reference dequantisation of the 1-3-bit IQ formats (quant_ref_iq.cpp), which dequantize_row
// routes to. (They have no reference quantiser: ggml's needs an importance matrix.)
#include <cstdint>

#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::detail {

// (is_iq_grid_type, kernels.h, says which types these are.)
// Decodes nb blocks of such a type into nb * 256 floats, as ggml's dequantize_row_iq*.
void dequantize_iq_grid(GgmlType t, const void* src, float* dst, int64_t nb);

}  // namespace clusterctl::kernels::detail
