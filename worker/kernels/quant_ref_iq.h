#pragma once
// Reference dequantisation of the 1-3-bit IQ formats (quant_ref_iq.cpp), which dequantize_row
// routes to. (They have no reference quantiser: ggml's needs an importance matrix.)
#include <cstdint>

#include "worker/kernels/kernels.h"

namespace clusterctl::kernels::detail {

// Whether t is one of IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S.
bool is_iq_grid_type(GgmlType t);
// Decodes nb blocks of such a type into nb * 256 floats, as ggml's dequantize_row_iq*.
void dequantize_iq_grid(GgmlType t, const void* src, float* dst, int64_t nb);

}  // namespace clusterctl::kernels::detail
