// Layout::Packed8 kernels for NEON: Q4_0, Q8_0, Q4_K, Q5_K, Q3_K, Q6_K and IQ4_XS, 8 rows at a time (packed.h has
// the layouts). Lane r of a register is row r (rows 0..3 and 4..7 in two registers): a chunk of
// a packed block holds 4 bytes of every row, so its signed dot with the token's 4-byte piece (a
// lane broadcast) lands in the row's lane, with no horizontal sums. The stored offsets (+128 on
// Q8_0 weights and on Q6_K's tokens) are flipped back to signed bytes, since the NEON dot is
// signed x signed; the integer dots are exact, and the float steps per block are the scalar
// reference's (packed.cpp), so every kernel gives the reference's bits, alone or in a
// batch. Prompt kernels run one group against up to kPackTokens tokens, unpacking its weights once.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "worker/kernels/arm/neon_common.h"
#include "worker/kernels/blocks.h"
#include "worker/kernels/packed.h"
#include "worker/kernels/packed_tokens.h"

namespace clusterctl::kernels::detail {
namespace {

// ---- shared by the types ----

// The token's 4-byte piece k in every lane.
inline int8x16_t piece(const int8_t* qs, int k) {
  int32_t v;
  std::memcpy(&v, qs + 4 * k, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

inline int8x16_t flip_top_bit(uint8x16_t v) { return vreinterpretq_s8_u8(veorq_u8(v, vdupq_n_u8(0x80))); }

// The group's 8 fp16 values at p as floats: rows 0..3, rows 4..7.
struct Rows8F {
  float32x4_t lo, hi;
  explicit Rows8F(const uint8_t* p) {
    const uint16x8_t d = vld1q_u16(reinterpret_cast<const uint16_t*>(p));
    lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(d)));
    hi = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(d)));
  }
};

// 8 rows' int32 sums (rows 0..3, 4..7).
struct Rows8I {
  int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
};

// 8 rows' float sums.
struct Acc8 {
  float32x4_t lo = vdupq_n_f32(0), hi = vdupq_n_f32(0);
};

// The group's 8 signed scale bytes at p as int32: rows 0..3, rows 4..7.
struct Scales8 {
  int32x4_t lo, hi;
  explicit Scales8(const uint8_t* p) {
    const int16x8_t s = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(p)));
    lo = vmovl_s16(vget_low_s16(s));
    hi = vmovl_high_s16(s);
  }
};

// isum += dot * scale, per row.
inline void add_scaled(Rows8I& isum, const Rows8I& dot, const Scales8& scale) {
  isum.lo = vmlaq_s32(isum.lo, dot.lo, scale.lo);
  isum.hi = vmlaq_s32(isum.hi, dot.hi, scale.hi);
}

// acc += cvt(dot) * (d_row * d_token), one fused multiply-add per row.
inline void fold_scaled(Acc8& acc, const Rows8I& dot, const Rows8F& d, float d_token) {
  acc.lo = vfmaq_f32(acc.lo, vcvtq_f32_s32(dot.lo), vmulq_n_f32(d.lo, d_token));
  acc.hi = vfmaq_f32(acc.hi, vcvtq_f32_s32(dot.hi), vmulq_n_f32(d.hi, d_token));
}

// T tokens' sums of one group's 8 rows: stored plainly, or (Chunked) each row's float sum
// restarted every chunk and folded into a double.
// (Chunked sums are multiplied by scale[t], when given, before they are folded.)
template <int T, bool Chunked>
struct Rows8Sums {
  Acc8 acc[T];
  float64x2_t folded[T][4];
  const float* scale;
  explicit Rows8Sums(const float* s = nullptr) : scale(s) {
    for (int t = 0; t < T; ++t)
      for (auto& v : folded[t]) v = vdupq_n_f64(0);
  }
  void start_chunk() {
    for (int t = 0; t < T; ++t) acc[t] = Acc8{};
  }
  void end_chunk(float* yf, size_t y_stride) {
    for (int t = 0; t < T; ++t) {
      if constexpr (Chunked) {
        if (scale) acc[t].lo = vmulq_n_f32(acc[t].lo, scale[t]), acc[t].hi = vmulq_n_f32(acc[t].hi, scale[t]);
        folded[t][0] = vaddq_f64(folded[t][0], vcvt_f64_f32(vget_low_f32(acc[t].lo)));
        folded[t][1] = vaddq_f64(folded[t][1], vcvt_high_f64_f32(acc[t].lo));
        folded[t][2] = vaddq_f64(folded[t][2], vcvt_f64_f32(vget_low_f32(acc[t].hi)));
        folded[t][3] = vaddq_f64(folded[t][3], vcvt_high_f64_f32(acc[t].hi));
      } else {
        vst1q_f32(yf + t * y_stride, acc[t].lo);
        vst1q_f32(yf + t * y_stride + 4, acc[t].hi);
      }
    }
  }
  void finish(double* yd, size_t y_stride) {
    if constexpr (Chunked)
      for (int t = 0; t < T; ++t)
        for (int k = 0; k < 4; ++k) vst1q_f64(yd + t * y_stride + 2 * k, folded[t][k]);
  }
};

// The frame of every kernel: Type::block<T>(g, x_t[], xoff_t[], acc[]) adds block i of one group
// against T tokens (packed_tokens.h's run_one_group); a token alone is T = 1.
template <typename Type>
struct Packed {
  template <int T, bool Chunked, typename... Args>
  static void run(Args... args) {
    run_one_group<Type, Rows8Sums, T, Chunked>(args...);
  }
  static void dot(int64_t n, const uint8_t* group, const void* x, const int32_t* xoff, float* y) {
    run<1, false>(n, 0, group, static_cast<const uint8_t*>(x), 0, xoff, 0, y, nullptr, 0, nullptr);
  }
  static void chunked_dot(int64_t n, int64_t chunk, const uint8_t* group, const void* x, const int32_t* xoff, double* y,
                          float scale) {
    run<1, true>(n, chunk, group, static_cast<const uint8_t*>(x), 0, xoff, 0, nullptr, y, 0, &scale);
  }
  static PackedKernels kernels() {
    return {dot, chunked_dot, packed_tokens_dot<GroupByGroup<Packed>>, packed_tokens_chunked_dot<GroupByGroup<Packed>>};
  }
};

// ---- Q4_0: nibbles stored +8 (xoff takes 8 * the token's sum off) ----

struct Q4_0 {
  using Act = block_q8_0;
  static constexpr int64_t kCols = QK4_0;
  static constexpr size_t kBlockBytes = kPackedQ4_0BlockBytes;
  static constexpr int kXoff = 1;
  template <int T>
  static void block(const uint8_t* g, const Act* const* b, const int32_t* const* xoff, Acc8* acc) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    Rows8I dot[T];
    for (int j = 0; j < 4; ++j) {
      // Low nibbles are elements 4j..4j+3 of each row, high nibbles 16+4j..16+4j+3.
      const uint8x16_t c0 = vld1q_u8(g + kPackRows * 2 + 32 * j), c1 = vld1q_u8(g + kPackRows * 2 + 32 * j + 16);
      const int8x16_t lo0 = vreinterpretq_s8_u8(vandq_u8(c0, m4)), hi0 = vreinterpretq_s8_u8(vshrq_n_u8(c0, 4));
      const int8x16_t lo1 = vreinterpretq_s8_u8(vandq_u8(c1, m4)), hi1 = vreinterpretq_s8_u8(vshrq_n_u8(c1, 4));
      for (int t = 0; t < T; ++t) {
        const int8x16_t yl = piece(b[t]->qs, j), yh = piece(b[t]->qs, 4 + j);
        dot[t].lo = dot_s8(dot_s8(dot[t].lo, lo0, yl), hi0, yh);
        dot[t].hi = dot_s8(dot_s8(dot[t].hi, lo1, yl), hi1, yh);
      }
    }
    const Rows8F d(g);
    for (int t = 0; t < T; ++t) {
      const int32x4_t offset = vdupq_n_s32(*xoff[t]);
      dot[t].lo = vsubq_s32(dot[t].lo, offset);
      dot[t].hi = vsubq_s32(dot[t].hi, offset);
      fold_scaled(acc[t], dot[t], d, h2f(b[t]->d));
    }
  }
};

// ---- Q8_0: quants stored +128; the signed dot needs no xoff ----

struct Q8_0 {
  using Act = block_q8_0;
  static constexpr int64_t kCols = QK8_0;
  static constexpr size_t kBlockBytes = kPackedQ8_0BlockBytes;
  static constexpr int kXoff = 1;
  template <int T>
  static void block(const uint8_t* g, const Act* const* b, const int32_t* const*, Acc8* acc) {
    Rows8I dot[T];
    for (int k = 0; k < 8; ++k) {
      const uint8_t* c = g + kPackRows * 2 + 32 * k;
      const int8x16_t w0 = flip_top_bit(vld1q_u8(c)), w1 = flip_top_bit(vld1q_u8(c + 16));
      for (int t = 0; t < T; ++t) {
        const int8x16_t y = piece(b[t]->qs, k);
        dot[t].lo = dot_s8(dot[t].lo, w0, y);
        dot[t].hi = dot_s8(dot[t].hi, w1, y);
      }
    }
    const Rows8F d(g);
    for (int t = 0; t < T; ++t) fold_scaled(acc[t], dot[t], d, h2f(b[t]->d));
  }
};

// ---- Q4_K and Q5_K against Q8_K: per sub-block pair, nibble dots times the rows' scales; the mins
// against the token's sub-block pair sums; then t = d * isum - dmin * msum, acc += t * d_token ----

inline int32x4_t widen_u8_lo(uint8x8_t v) { return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(v)))); }
inline int32x4_t widen_u8_hi(uint8x8_t v) { return vreinterpretq_s32_u32(vmovl_high_u16(vmovl_u8(v))); }

// Rows' mins (int16 pairs) against the token's pair: 4 rows' m0 * s0 + m1 * s1.
inline int32x4_t mins_dot(const uint8_t* mins4rows, int16x8_t pair) {
  const int16x8_t m = vld1q_s16(reinterpret_cast<const int16_t*>(mins4rows));
  return vpaddq_s32(vmull_s16(vget_low_s16(m), vget_low_s16(pair)), vmull_high_s16(m, pair));
}

// Q5_K (Fifth) ORs each nibble's fifth bit on from its sub-block pair's fifth-bit chunks; `bits`
// carries a chunk from j to j + 1, shifted right 2 so j's bits are bits 0 (low) and 1 (high).
template <bool Fifth>
struct K4 {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = Fifth ? kPackedQ5_KBlockBytes : kPackedQ4_KBlockBytes;
  static constexpr int kXoff = kPackedQ4_KXoff;

  // 16 bytes (4 rows) of nibble chunk (p, j), at byte offset `half` (0 or 16).
  static void unpack(const uint8_t* g, int p, int j, int half, uint8x16_t& bits, int8x16_t& lo, int8x16_t& hi) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f), c = vld1q_u8(g + k4_quant_chunk<Fifth>(p, j) + half);
    uint8x16_t l = vandq_u8(c, m4), h = vshrq_n_u8(c, 4);
    if constexpr (Fifth) {
      bits = j % 4 == 0 ? vld1q_u8(g + q5_K_fifth_chunk(p, j / 4) + half) : vshrq_n_u8(bits, 2);
      const uint8x16_t bit4 = vdupq_n_u8(0x10);
      l = vorrq_u8(l, vandq_u8(vshlq_n_u8(bits, 4), bit4));
      h = vorrq_u8(h, vandq_u8(vshlq_n_u8(bits, 3), bit4));
    }
    lo = vreinterpretq_s8_u8(l);
    hi = vreinterpretq_s8_u8(h);
  }

  template <int T>
  static void block(const uint8_t* g, const Act* const* b, const int32_t* const* pairs, Acc8* acc) {
    Rows8I isum[T], msum[T];
    for (int p = 0; p < 4; ++p) {
      Rows8I lo[T], hi[T];
      uint8x16_t bits0 = vdupq_n_u8(0), bits1 = bits0;
      for (int j = 0; j < 8; ++j) {
        int8x16_t l0, h0, l1, h1;
        unpack(g, p, j, 0, bits0, l0, h0);
        unpack(g, p, j, 16, bits1, l1, h1);
        for (int t = 0; t < T; ++t) {
          const int8x16_t yl = piece(b[t]->qs, 16 * p + j), yh = piece(b[t]->qs, 16 * p + 8 + j);
          lo[t].lo = dot_s8(lo[t].lo, l0, yl);
          lo[t].hi = dot_s8(lo[t].hi, l1, yl);
          hi[t].lo = dot_s8(hi[t].lo, h0, yh);
          hi[t].hi = dot_s8(hi[t].hi, h1, yh);
        }
      }
      const uint8_t* sc = g + kPackedQ4_KScales + 16 * p;
      const uint8x8_t sc_lo = vld1_u8(sc), sc_hi = vld1_u8(sc + 8);
      const uint8_t* mins = g + kPackedQ4_KMins + 32 * p;
      for (int t = 0; t < T; ++t) {
        isum[t].lo = vmlaq_s32(vmlaq_s32(isum[t].lo, lo[t].lo, widen_u8_lo(sc_lo)), hi[t].lo, widen_u8_lo(sc_hi));
        isum[t].hi = vmlaq_s32(vmlaq_s32(isum[t].hi, lo[t].hi, widen_u8_hi(sc_lo)), hi[t].hi, widen_u8_hi(sc_hi));
        const int16x8_t pair = vreinterpretq_s16_s32(vdupq_n_s32(pairs[t][p]));
        msum[t].lo = vaddq_s32(msum[t].lo, mins_dot(mins, pair));
        msum[t].hi = vaddq_s32(msum[t].hi, mins_dot(mins + 16, pair));
      }
    }
    const Rows8F d(g), dmin(g + 16);
    for (int t = 0; t < T; ++t) {
      const float32x4_t v0 = vfmsq_f32(vmulq_f32(d.lo, vcvtq_f32_s32(isum[t].lo)), dmin.lo, vcvtq_f32_s32(msum[t].lo));
      const float32x4_t v1 = vfmsq_f32(vmulq_f32(d.hi, vcvtq_f32_s32(isum[t].hi)), dmin.hi, vcvtq_f32_s32(msum[t].hi));
      acc[t].lo = vfmaq_n_f32(acc[t].lo, v0, b[t]->d);
      acc[t].hi = vfmaq_n_f32(acc[t].hi, v1, b[t]->d);
    }
  }
};

// ---- Q6_K against Q8_K tokens stored +128: weights q - 32 from the nibble and 2-bit planes; per
// 16-element sub-block the signed dot times the scale (the +128 flipped off, so no row constant);
// then acc += isum * (d * d_token) ----

// Piece c + 16 * Quarter of 4 rows from its low-nibble chunk and high-bit chunk.
template <int Quarter>
inline int8x16_t q6_K_piece(uint8x16_t low, uint8x16_t h) {
  const uint8x16_t m4 = vdupq_n_u8(0x0f), m30 = vdupq_n_u8(0x30);
  uint8x16_t q;
  if constexpr (Quarter == 0)
    q = vorrq_u8(vandq_u8(low, m4), vandq_u8(vshlq_n_u8(h, 4), m30));
  else if constexpr (Quarter == 1)
    q = vorrq_u8(vandq_u8(low, m4), vandq_u8(vshlq_n_u8(h, 2), m30));
  else if constexpr (Quarter == 2)
    q = vorrq_u8(vshrq_n_u8(low, 4), vandq_u8(h, m30));
  else
    q = vorrq_u8(vshrq_n_u8(low, 4), vandq_u8(vshrq_n_u8(h, 2), m30));
  return vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(32));
}

struct Q6_K {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = kPackedQ6_KBlockBytes;
  static constexpr int kXoff = 0;

  // Sub-block s + 4 * Quarter (pieces c + 16 * Quarter, c = 4s .. 4s + 3) for T tokens.
  template <int Quarter, int T>
  static void sub_block(const uint8_t* g, int s, const Act* const* b, Rows8I* isum) {
    Rows8I dot[T];
    for (int j = 0; j < 4; ++j) {
      const int c = 4 * s + j;
      const uint8_t* low = g + q6_K_low_chunk(c + 16 * (Quarter & 1));
      const uint8_t* high = g + q6_K_high_chunk(c);
      const int8x16_t w0 = q6_K_piece<Quarter>(vld1q_u8(low), vld1q_u8(high));
      const int8x16_t w1 = q6_K_piece<Quarter>(vld1q_u8(low + 16), vld1q_u8(high + 16));
      for (int t = 0; t < T; ++t) {
        const int8x16_t y = flip_top_bit(vreinterpretq_u8_s8(piece(b[t]->qs, c + 16 * Quarter)));
        dot[t].lo = dot_s8(dot[t].lo, w0, y);
        dot[t].hi = dot_s8(dot[t].hi, w1, y);
      }
    }
    const Scales8 sc(g + kPackedQ6_KScales + 8 * (s + 4 * Quarter));
    for (int t = 0; t < T; ++t) add_scaled(isum[t], dot[t], sc);
  }

  template <int T>
  static void block(const uint8_t* g, const Act* const* b, const int32_t* const*, Acc8* acc) {
    Rows8I isum[T];
    for (int s = 0; s < 4; ++s) {
      sub_block<0, T>(g, s, b, isum);
      sub_block<1, T>(g, s, b, isum);
      sub_block<2, T>(g, s, b, isum);
      sub_block<3, T>(g, s, b, isum);
    }
    const Rows8F d(g);
    for (int t = 0; t < T; ++t) fold_scaled(acc[t], isum[t], d, b[t]->d);
  }
};

// ---- IQ4_XS against Q8_K: the nibbles through the table as signed bytes (so xoff, the unsigned
// kernels' +128 share, is not needed); per 32-element sub-block the dot times the rows' scale;
// then acc += isum * (d * d_token) ----

struct Iq4Xs {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = kPackedIq4XsBlockBytes;
  static constexpr int kXoff = kPackedIq4XsXoff;
  template <int T>
  static void block(const uint8_t* g, const Act* const* b, const int32_t* const*, Acc8* acc) {
    const int8x16_t table = vld1q_s8(kValuesIq4nl);
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    Rows8I isum[T];
    for (int ib = 0; ib < 8; ++ib) {
      Rows8I dot[T];
      for (int j = 0; j < 4; ++j) {
        // Low nibbles are elements 32ib+4j..+3 of each row, high nibbles 32ib+16+4j..+3.
        const uint8_t* c = g + iq4_xs_chunk(ib, j);
        const uint8x16_t c0 = vld1q_u8(c), c1 = vld1q_u8(c + 16);
        const int8x16_t lo0 = vqtbl1q_s8(table, vandq_u8(c0, m4)), hi0 = vqtbl1q_s8(table, vshrq_n_u8(c0, 4));
        const int8x16_t lo1 = vqtbl1q_s8(table, vandq_u8(c1, m4)), hi1 = vqtbl1q_s8(table, vshrq_n_u8(c1, 4));
        for (int t = 0; t < T; ++t) {
          const int8x16_t yl = piece(b[t]->qs, 8 * ib + j), yh = piece(b[t]->qs, 8 * ib + 4 + j);
          dot[t].lo = dot_s8(dot_s8(dot[t].lo, lo0, yl), hi0, yh);
          dot[t].hi = dot_s8(dot_s8(dot[t].hi, lo1, yl), hi1, yh);
        }
      }
      const Scales8 sc(g + kPackedIq4XsScales + 8 * ib);
      for (int t = 0; t < T; ++t) add_scaled(isum[t], dot[t], sc);
    }
    const Rows8F d(g);
    for (int t = 0; t < T; ++t) fold_scaled(acc[t], isum[t], d, b[t]->d);
  }
};

// ---- Q3_K against Q8_K: weights q = low | third << 2 (0..7) from the 2-bit and third-bit
// chunks; per sub-block the dot starts from -4 * the token's sub-block sum (xoff's low 16 bits,
// sign-extended) and is multiplied by the rows' scale; then acc += isum * (d * d_token) ----

struct Q3_K {
  using Act = block_q8_K;
  static constexpr int64_t kCols = QK_K;
  static constexpr size_t kBlockBytes = kPackedQ3_KBlockBytes;
  static constexpr int kXoff = kPackedQ3_KXoff;

  // Plane s of low chunk k (16 bytes: 4 rows) with its third bit, bit 4 * (k % 2) + s of `high`.
  static int8x16_t weights(uint8x16_t low, uint8x16_t high, int k, int s) {
    const uint8x16_t l = vandq_u8(vshlq_u8(low, vdupq_n_s8(static_cast<int8_t>(-2 * s))), vdupq_n_u8(3));
    const uint8x16_t h = vshlq_u8(high, vdupq_n_s8(static_cast<int8_t>(2 - (4 * (k % 2) + s))));
    return vreinterpretq_s8_u8(vorrq_u8(l, vandq_u8(h, vdupq_n_u8(4))));
  }

  template <int T>
  static void block(const uint8_t* g, const Act* const* b, const int32_t* const* xoff, Acc8* acc) {
    Rows8I isum[T];
    for (int q = 0; q < 4; ++q) {
      uint8x16_t low[4][2], high[2][2];
      for (int half = 0; half < 2; ++half) {
        for (int k = 0; k < 4; ++k) low[k][half] = vld1q_u8(g + q3_K_low_chunk(q, k) + 16 * half);
        for (int h = 0; h < 2; ++h) high[h][half] = vld1q_u8(g + q3_K_high_chunk(q, h) + 16 * half);
      }
      for (int s = 0; s < 4; ++s) {
        const int j = 4 * s + q;
        int8x16_t w[4][2];
        for (int k = 0; k < 4; ++k)
          for (int half = 0; half < 2; ++half) w[k][half] = weights(low[k][half], high[k / 2][half], k, s);
        const Scales8 sc(g + kPackedQ3_KScales + 8 * j);
        for (int t = 0; t < T; ++t) {
          Rows8I dot;
          dot.lo = dot.hi = vdupq_n_s32(static_cast<int16_t>(xoff[t][j] & 0xffff));
          for (int k = 0; k < 4; ++k) {
            const int8x16_t y = piece(b[t]->qs, 4 * j + k);
            dot.lo = dot_s8(dot.lo, w[k][0], y);
            dot.hi = dot_s8(dot.hi, w[k][1], y);
          }
          add_scaled(isum[t], dot, sc);
        }
      }
    }
    const Rows8F d(g);
    for (int t = 0; t < T; ++t) fold_scaled(acc[t], isum[t], d, b[t]->d);
  }
};

}  // namespace

void fill_packed_neon(KernelTable& t) {
  t.packed[slot(GgmlType::Q4_0)] = Packed<Q4_0>::kernels();
  t.packed[slot(GgmlType::Q8_0)] = Packed<Q8_0>::kernels();
  t.packed[slot(GgmlType::Q4_K)] = Packed<K4<false>>::kernels();
  t.packed[slot(GgmlType::Q5_K)] = Packed<K4<true>>::kernels();
  t.packed[slot(GgmlType::Q3_K)] = Packed<Q3_K>::kernels();
  t.packed[slot(GgmlType::Q6_K)] = Packed<Q6_K>::kernels();
  t.packed[slot(GgmlType::IQ4_XS)] = Packed<Iq4Xs>::kernels();
}

}  // namespace clusterctl::kernels::detail
