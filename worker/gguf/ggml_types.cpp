#include "worker/gguf/ggml_types.h"

#include <array>
#include <cctype>

#include "worker/common/error.h"

namespace clusterctl::gguf {
namespace {

struct Entry {
  uint32_t id;
  TypeTraits traits;
};

// Block layouts from ggml: QK = 32 for the legacy quants, QK_K = 256 for K- and I-quants.
constexpr std::array kTypes = {
    Entry{0, {"F32", 1, 4}},         Entry{1, {"F16", 1, 2}},         Entry{2, {"Q4_0", 32, 18}},
    Entry{3, {"Q4_1", 32, 20}},      Entry{4, {"Q4_2", 0, 0}},        Entry{5, {"Q4_3", 0, 0}},
    Entry{6, {"Q5_0", 32, 22}},      Entry{7, {"Q5_1", 32, 24}},      Entry{8, {"Q8_0", 32, 34}},
    Entry{9, {"Q8_1", 32, 36}},      Entry{10, {"Q2_K", 256, 84}},    Entry{11, {"Q3_K", 256, 110}},
    Entry{12, {"Q4_K", 256, 144}},   Entry{13, {"Q5_K", 256, 176}},   Entry{14, {"Q6_K", 256, 210}},
    Entry{15, {"Q8_K", 256, 292}},   Entry{16, {"IQ2_XXS", 256, 66}}, Entry{17, {"IQ2_XS", 256, 74}},
    Entry{18, {"IQ3_XXS", 256, 98}}, Entry{19, {"IQ1_S", 256, 50}},   Entry{20, {"IQ4_NL", 32, 18}},
    Entry{21, {"IQ3_S", 256, 110}},  Entry{22, {"IQ2_S", 256, 82}},   Entry{23, {"IQ4_XS", 256, 136}},
    Entry{24, {"I8", 1, 1}},         Entry{25, {"I16", 1, 2}},        Entry{26, {"I32", 1, 4}},
    Entry{27, {"I64", 1, 8}},        Entry{28, {"F64", 1, 8}},        Entry{29, {"IQ1_M", 256, 56}},
    Entry{30, {"BF16", 1, 2}},       Entry{31, {"Q4_0_4_4", 0, 0}},   Entry{32, {"Q4_0_4_8", 0, 0}},
    Entry{33, {"Q4_0_8_8", 0, 0}},   Entry{34, {"TQ1_0", 256, 54}},   Entry{35, {"TQ2_0", 256, 66}},
    Entry{36, {"IQ4_NL_4_4", 0, 0}}, Entry{37, {"IQ4_NL_4_8", 0, 0}}, Entry{38, {"IQ4_NL_8_8", 0, 0}},
    Entry{39, {"MXFP4", 32, 17}},
};

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t raw_type) {
  for (const auto& e : kTypes)
    if (e.id == raw_type) return e.traits;
  return std::nullopt;
}

TypeTraits type_traits(GgmlType type) {
  auto t = type_traits(static_cast<uint32_t>(type));
  if (!t) throw Error("unknown ggml type " + std::to_string(static_cast<uint32_t>(type)));
  return *t;
}

std::string_view type_name(GgmlType type) { return type_traits(type).name; }

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (const auto& e : kTypes) {
    if (e.traits.block_size == 0 || e.traits.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(name[i])) == e.traits.name[i];
    if (same) return static_cast<GgmlType>(e.id);
  }
  return std::nullopt;
}

uint64_t row_bytes(GgmlType type, uint64_t n) {
  auto t = type_traits(type);
  if (t.block_size == 0 || n % t.block_size != 0)
    throw Error("a row of " + std::to_string(n) + " elements is not a whole number of " + std::string(t.name) +
                " blocks");
  return n / t.block_size * t.type_size;
}

}  // namespace clusterctl::gguf
