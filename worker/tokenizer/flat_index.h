#pragma once
#include <bit>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clusterctl::tokenizer {

// Open-addressing hash tables for the vocabulary's two big lookups. Node-based maps spend
// most of the load time of a 128k-token / 280k-merge vocabulary allocating nodes; these are
// one array each, filled once and then only read.

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

inline uint64_t hash_text(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then mixed: token texts are short
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return mix64(h);
}

inline size_t table_size_for(size_t n) { return std::bit_ceil(n * 2 + 16); }

// Text -> index into a caller-owned vector of strings.
class TextIndex {
 public:
  // `texts` must outlive the index and not change. On duplicate texts the last index wins.
  void build(const std::vector<std::string>& texts) {
    texts_ = &texts;
    slots_.assign(table_size_for(texts.size()), -1);
    mask_ = slots_.size() - 1;
    for (size_t i = 0; i < texts.size(); ++i) {
      size_t s = hash_text(texts[i]) & mask_;
      while (slots_[s] >= 0 && texts[slots_[s]] != texts[i]) s = (s + 1) & mask_;
      slots_[s] = static_cast<int32_t>(i);
    }
  }
  int32_t find(std::string_view text) const {
    if (slots_.empty()) return -1;
    for (size_t s = hash_text(text) & mask_;; s = (s + 1) & mask_) {
      int32_t i = slots_[s];
      if (i < 0 || (*texts_)[i] == text) return i;
    }
  }

 private:
  const std::vector<std::string>* texts_ = nullptr;
  std::vector<int32_t> slots_;
  size_t mask_ = 0;
};

// (left id, right id) -> merge rank.
class PairIndex {
 public:
  void reserve(size_t n) {
    keys_.assign(table_size_for(n), kEmpty);
    values_.assign(keys_.size(), -1);
    mask_ = keys_.size() - 1;
  }
  // Keeps the first (lowest) rank when a pair is listed twice.
  void insert(int32_t left, int32_t right, int32_t rank) {
    uint64_t key = pack(left, right);
    size_t s = mix64(key) & mask_;
    while (keys_[s] != kEmpty && keys_[s] != key) s = (s + 1) & mask_;
    if (keys_[s] == kEmpty) {
      keys_[s] = key;
      values_[s] = rank;
    }
  }
  int32_t find(int32_t left, int32_t right) const {
    if (keys_.empty()) return -1;
    uint64_t key = pack(left, right);
    for (size_t s = mix64(key) & mask_;; s = (s + 1) & mask_) {
      if (keys_[s] == key) return values_[s];
      if (keys_[s] == kEmpty) return -1;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t pack(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }
  std::vector<uint64_t> keys_;
  std::vector<int32_t> values_;
  size_t mask_ = 0;
};

}  // namespace clusterctl::tokenizer
