#pragma once
// The CPU kernel interface the model code calls. Behind it the kernels are cut by role (quant
// reference, rows, packed, tiles; CMakeLists.txt maps the files), each with one implementation
// per ISA (scalar reference, AVX2/FMA/F16C, AVX-512 VNNI, NEON (+dotprod)) chosen at run time;
// a GPU backend would implement the same calls.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "worker/gguf/ggml_types.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/thread_pool.h"

namespace clusterctl::kernels {

using gguf::GgmlType;

enum class Isa { Scalar, Avx2, Avx512, Neon };
const char* isa_name(Isa isa);
std::optional<Isa> isa_from_name(std::string_view name);  // "scalar", "avx2", "avx512", "neon"
Isa best_isa();                                           // what this CPU supports best
Isa active_isa();                                         // what the kernels use now (default: best_isa())
void set_active_isa(Isa isa);                             // tests force Scalar to compare paths; throws if unsupported

// Types the engine computes with, and their names for messages ("F32 F16 BF16 Q8_0 ...").
bool is_computable(GgmlType t);
std::string computable_type_names();

// fp16 / bf16 conversion.
float fp16_to_fp32(fp16_t h);
fp16_t fp32_to_fp16(float f);
float bf16_to_fp32(bf16_t h);
bf16_t fp32_to_bf16(float f);

// ggml's vector updates of a sum kept in float 16 (as its flash attention keeps the weighted sum
// of F16 values) and in float, each element as written, at the speed of the active ISA:
//   f16_scale: y = half(float(y) * s)          f16_mad: y = half(fma(float(x), v, float(y)))
//   f16_to_f32: y = float(x)                   f32_mad: y = fma(x, v, y)
void f16_scale(int64_t n, fp16_t* y, float s);
void f16_mad(int64_t n, fp16_t* y, const fp16_t* x, float v);
void f16_to_f32(int64_t n, const fp16_t* x, float* y);
void f32_mad(int64_t n, float* y, const float* x, float v);
// c[j] = a . column j of bt (k rows, ld floats apart) for j < n, each summed as one fma chain
// from 0 in element order: ggml's simd_gemm (flash attention's tiles) with lanes over columns.
void f32_column_dots(int64_t k, int64_t n, const float* bt, int64_t ld, const float* a, float* c);

// Reference (de)quantisation of one row of n elements (n a multiple of the block size).
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);
void quantize_row(GgmlType t, const float* src, void* dst, int64_t n);
// The 1-3-bit IQ types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) decode and compute
// but have no quantiser here: ggml's needs an importance matrix. For synthetic models and
// benchmarks, random_iq_blocks writes n values (whole blocks) of valid blocks with random grid
// indices, signs and sub-block scales drawn from `seed`, each block's scale set so that its values
// have RMS `rms`.
bool is_iq_grid_type(GgmlType t);
void random_iq_blocks(GgmlType t, uint64_t seed, float rms, void* dst, int64_t n);
// A `rows` x `cols` matrix of `t` in GGUF's row layout for benchmarks and probes: 64 distinct rows
// of normal weights of RMS 0.02 from `seed`, quantised (random_iq_blocks for the grid types),
// repeated; what the rows hold does not change a kernel's speed.
std::vector<uint8_t> random_weight_rows(GgmlType t, int64_t rows, int64_t cols, uint32_t seed);

// Activations are quantised to the weight type's partner before integer dot products:
// Q4_0/Q5_0/Q8_0/IQ4_NL -> Q8_0, Q4_1/Q5_1 -> Q8_1, K-quants (Q2_K..Q6_K), IQ4_XS and the
// 1-3-bit IQ types (IQ1_S..IQ3_S) -> Q8_K,
// F16 -> F16, BF16 -> BF16, F32 -> F32 (as llama.cpp pairs them).
GgmlType vec_dot_type(GgmlType weight_type);
void quantize_activations(GgmlType weight_type, const float* x, void* out, int64_t n);
size_t activation_row_bytes(GgmlType weight_type, int64_t n);

// dot(w_row, x) for one weight row against one activation row already quantised with
// quantize_activations for this weight type.
float vec_dot(GgmlType weight_type, int64_t n, const void* w_row, const void* x_q);
// out[r] = vec_dot(weight_type, n, rows + r * row_stride, x_q) for r < n_rows, the same bits, in
// one call: attention's dots over a head's cached keys or value rows.
void vec_dots(GgmlType weight_type, int64_t n, const void* rows, size_t row_stride, int64_t n_rows, const void* x_q,
              float* out);

// How a Matrix's bytes are laid out.
//   Rows:     GGUF's, one row after another (row_stride bytes apart).
//   Packed8:  rows of a packable type packed 8 at a time (pack_rows8; the layouts are in
//             packed.h), so a decode reads one sequential run of memory instead of 8 interleaved
//             row streams; row_stride is unused.
enum class Layout { Rows, Packed8 };
constexpr int kPackRows = 8;  // rows of a Packed8 group

// A weight matrix (or a contiguous slice of its rows): `rows` rows of `cols` elements.
struct Matrix {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_stride = 0;  // bytes from one row to the next (Layout::Rows)
  Layout layout = Layout::Rows;
};

// Refuses (clusterctl::Error starting with `what`, naming the row, block and field) a Layout::Rows
// matrix whose blocks hold a scale that decodes to NaN or infinity, which no quantiser writes
// but a corrupt file can: such a block would make every dot product with it garbage. The
// loader calls it on the rows and columns a rank uses; it reads the scale fields once.
void validate_blocks(const Matrix& m, const std::string& what);

// Whether the type has a Packed8 layout (packed.h describes each).
bool is_packable(GgmlType t);
// Whether the active kernels compute this matrix faster packed (a packable type on an ISA with
// that type's packed kernels, whole groups of 8 rows).
bool should_pack(const Matrix& w);
size_t packed_bytes(const Matrix& w);
// Packs w (Layout::Rows) into dst (packed_bytes(w) bytes) and returns the packed matrix.
Matrix pack_rows8(const Matrix& w, uint8_t* dst);

// Rows [begin, end) of w as a matrix of their own (begin a multiple of kPackRows for Layout::Packed8).
// A row's result does not depend on the rows around it, so a slice computes the whole matrix's
// bits for its rows: callers cut several matrices into slices and run them all in one pool meeting.
Matrix row_slice(const Matrix& w, int64_t begin, int64_t end);

// Scratch the matmul reuses from call to call so nothing is allocated per token.
class Workspace {
 public:
  void* get(size_t bytes);  // grows (aligned to 64) and returns the buffer
  ~Workspace();

 private:
  void* buf_ = nullptr;
  size_t cap_ = 0;
};

// Which kernels sum a batch's dot products. The matrix-vector kernels (decoding) and the tiles
// (prompts) sum in different orders, so a token's bits depend on which ran it. BySize takes the
// matrix-vector kernels for one token and the tiles for more; a caller that needs each token's
// bits independent of the batch around it (the serving scheduler, and `run` to match it)
// chooses by the token's role instead: MatrixVector streams each weight row once and runs every
// token of the batch over it while it is in cache; Tiles work for a single token too.
// (Layout::Packed8 matrices have one kernel for both, so the choice changes nothing there.)
enum class Kernels { BySize, MatrixVector, Tiles };

// y[t*rows + r] = sum_k W[r][k] * x[t*cols + k] for t in [0, n_tokens).
void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Workspace& ws,
            Kernels kernels = Kernels::BySize);

// The row-parallel matmul of tensor parallelism (each rank holds a column range of W and the
// ranks' partial sums are added), made independent of where the columns are cut: each row's dot
// is summed in float only within chunks of `chunk` columns (chunk 0 starting at column 0, the last
// one possibly shorter) and every chunk's float is added into a double:
//   y[t*rows + r] = sum over chunks c of (double) dot(W[r][c], x[t][c]).
// A column range that starts on a chunk boundary computes exactly the same chunk floats as the
// whole row does, and sums of floats in double are exact (barring a dynamic range of more than
// 2^29 between chunks), so the double sum of every rank's y, rounded once to float, is the
// whole-row result bit for bit on any split whose cuts are multiples of `chunk`.
// `chunk` must be a positive multiple of the weight type's block size.
// With `token_scale`, each of token t's chunk floats is multiplied by token_scale[t] (in float)
// before it is added: a weighted sum (a mixture of experts' router weights) that still adds only
// floats, so it stays split-invariant.
void matmul_row_parallel(const Matrix& w, int64_t chunk, const float* x, int64_t n_tokens, double* y, ThreadPool& pool,
                         Workspace& ws, Kernels kernels = Kernels::BySize, const float* token_scale = nullptr);

}  // namespace clusterctl::kernels
