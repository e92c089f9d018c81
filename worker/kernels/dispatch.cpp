// Chooses the kernel table for the CPU at run time and routes the public calls through it.
#include <algorithm>
#include <atomic>
#include <iterator>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#include "worker/common/error.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/kernel_table.h"

namespace clusterctl::kernels {
namespace detail {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
// F16C from cpuid directly: clang's __builtin_cpu_supports does not know "f16c". (The AVX2
// check already covers the OS saving the YMM registers, which F16C needs too.)
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
bool cpu_has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c(); }
bool cpu_has_avx512() {
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}
bool cpu_has_avx512_vnni() { return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni"); }
#endif

bool supported(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return true;
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::Avx2:
      return cpu_has_avx2();
    case Isa::Avx512:
      return cpu_has_avx512();
#endif
#if defined(__aarch64__)
    case Isa::Neon:
      return true;  // NEON is part of AArch64
#endif
    default:
      return false;
  }
}

KernelTable build_table(Isa isa) {
  KernelTable t;
  fill_rows_scalar(t);
  fill_rows_iq_scalar(t);
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == Isa::Avx2 || isa == Isa::Avx512) {
    fill_rows_avx2(t);
    fill_packed_avx2(t);
  }
  // AVX-512 without VNNI keeps the AVX2 kernels: its byte dots would need the same maddubs +
  // madd pair at the same rate on such cores.
  if (isa == Isa::Avx512 && cpu_has_avx512_vnni()) {
    fill_rows_vnni(t);
    fill_packed_vnni(t);
    fill_tiles_vnni(t);
  }
#endif
#if defined(__aarch64__)
  if (isa == Isa::Neon) {
    fill_rows_neon(t);
    fill_rows_iq_neon(t);
    fill_packed_neon(t);
  }
#endif
  return t;
}

// One table per ISA, built once; switching the active ISA swaps a pointer.
const KernelTable& table_for(Isa isa) {
  static const KernelTable scalar = build_table(Isa::Scalar);
  static const KernelTable avx2 = build_table(supported(Isa::Avx2) ? Isa::Avx2 : Isa::Scalar);
  static const KernelTable avx512 = build_table(supported(Isa::Avx512) ? Isa::Avx512 : Isa::Scalar);
  static const KernelTable neon = build_table(supported(Isa::Neon) ? Isa::Neon : Isa::Scalar);
  switch (isa) {
    case Isa::Avx2:
      return avx2;
    case Isa::Avx512:
      return avx512;
    case Isa::Neon:
      return neon;
    default:
      return scalar;
  }
}

std::atomic<int> g_active{-1};  // -1: not chosen yet, best_isa() on first use

}  // namespace

const KernelTable& active_table() { return table_for(active_isa()); }

}  // namespace detail

using detail::slot;

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
    case Isa::Neon:
      return "neon";
  }
  return "unknown";
}

std::optional<Isa> isa_from_name(std::string_view name) {
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon})
    if (name == isa_name(isa)) return isa;
  return std::nullopt;
}

Isa best_isa() {
  for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::Neon})
    if (detail::supported(isa)) return isa;
  return Isa::Scalar;
}

Isa active_isa() {
  int v = detail::g_active.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(best_isa());
    detail::g_active.store(v, std::memory_order_relaxed);
  }
  return static_cast<Isa>(v);
}

void set_active_isa(Isa isa) {
  if (!detail::supported(isa))
    throw Error(std::string("the CPU kernels cannot use ") + isa_name(isa) + ": this CPU or build lacks it; use " +
                isa_name(best_isa()) + " or scalar");
  detail::g_active.store(static_cast<int>(isa), std::memory_order_relaxed);
}

namespace {

// The types the engine computes with: every ISA's table has a vec_dot for each (the scalar one
// at least), and every message that lists them reads them from here.
constexpr GgmlType kComputableTypes[] = {
    GgmlType::F32,    GgmlType::F16,     GgmlType::BF16,   GgmlType::Q8_0,  GgmlType::Q4_0,    GgmlType::Q4_1,
    GgmlType::Q5_0,   GgmlType::Q5_1,    GgmlType::Q4_K,   GgmlType::Q5_K,  GgmlType::Q6_K,    GgmlType::Q2_K,
    GgmlType::Q3_K,   GgmlType::IQ4_NL,  GgmlType::IQ4_XS, GgmlType::IQ3_S, GgmlType::IQ3_XXS, GgmlType::IQ2_S,
    GgmlType::IQ2_XS, GgmlType::IQ2_XXS, GgmlType::IQ1_M,  GgmlType::IQ1_S};

void require_computable(GgmlType t) {
  if (!is_computable(t))
    throw Error("tensor type " + std::string(gguf::type_name(t)) +
                " is not computed by clusterctl; use a model quantised as one of " + computable_type_names());
}

}  // namespace

bool is_computable(GgmlType t) {
  return std::find(std::begin(kComputableTypes), std::end(kComputableTypes), t) != std::end(kComputableTypes);
}

std::string computable_type_names() {
  std::string names;
  for (GgmlType t : kComputableTypes) names += (names.empty() ? "" : " ") + std::string(gguf::type_name(t));
  return names;
}

GgmlType vec_dot_type(GgmlType weight_type) {
  require_computable(weight_type);
  switch (weight_type) {
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
    case GgmlType::IQ4_NL:
      return GgmlType::Q8_0;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
      return GgmlType::Q8_1;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::IQ4_XS:
    case GgmlType::IQ3_S:
    case GgmlType::IQ3_XXS:
    case GgmlType::IQ2_S:
    case GgmlType::IQ2_XS:
    case GgmlType::IQ2_XXS:
    case GgmlType::IQ1_M:
    case GgmlType::IQ1_S:
      return GgmlType::Q8_K;
    default:
      return weight_type;  // F32, F16, BF16
  }
}

size_t activation_row_bytes(GgmlType weight_type, int64_t n) {
  const GgmlType act = vec_dot_type(weight_type);
  const auto traits = gguf::type_traits(act);
  if (n % traits.block_size != 0)
    throw Error("a row of " + std::to_string(n) + " elements does not fill whole " + std::string(traits.name) +
                " blocks of " + std::to_string(traits.block_size) + "; the model's tensor shapes are inconsistent");
  return gguf::row_bytes(act, static_cast<uint64_t>(n));
}

void quantize_activations(GgmlType weight_type, const float* x, void* out, int64_t n) {
  const GgmlType act = vec_dot_type(weight_type);
  if (act == GgmlType::F32) {
    std::copy(x, x + n, static_cast<float*>(out));
    return;
  }
  activation_row_bytes(weight_type, n);  // validates n against the block size
  detail::active_table().quantize[slot(act)](x, out, n);
}

void f16_scale(int64_t n, fp16_t* y, float s) { detail::active_table().f16_scale(n, y, s); }
void f16_mad(int64_t n, fp16_t* y, const fp16_t* x, float v) { detail::active_table().f16_mad(n, y, x, v); }
void f16_to_f32(int64_t n, const fp16_t* x, float* y) { detail::active_table().f16_to_f32(n, x, y); }
void f32_mad(int64_t n, float* y, const float* x, float v) { detail::active_table().f32_mad(n, y, x, v); }
void f32_column_dots(int64_t k, int64_t n, const float* bt, int64_t ld, const float* a, float* c) {
  detail::active_table().f32_column_dots(k, n, bt, ld, a, c);
}

float vec_dot(GgmlType weight_type, int64_t n, const void* w_row, const void* x_q) {
  require_computable(weight_type);
  return detail::active_table().vec_dot[slot(weight_type)](n, w_row, x_q);
}

void vec_dots(GgmlType weight_type, int64_t n, const void* rows, size_t row_stride, int64_t n_rows, const void* x_q,
              float* out) {
  require_computable(weight_type);
  const detail::KernelTable& t = detail::active_table();
  const auto* r = static_cast<const uint8_t*>(rows);
  if (const detail::VecDotsFn dots = t.vec_dots[slot(weight_type)]) return dots(n, r, row_stride, n_rows, x_q, out);
  const detail::VecDotFn dot = t.vec_dot[slot(weight_type)];
  for (int64_t i = 0; i < n_rows; ++i) out[i] = dot(n, r + i * row_stride, x_q);
}

}  // namespace clusterctl::kernels
