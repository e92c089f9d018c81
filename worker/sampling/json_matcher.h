#pragma once
// Structured output: a byte-level incremental matcher that tells whether text is the start of a
// JSON value (optionally one a JSON Schema of the supported subset describes), and the
// TokenConstraint that lets the sampler pick only tokens whose text keeps the output such a start
// and end the output only when the value is complete.
//
// The matcher follows every way the text so far can still be read (anyOf keeps several), each a
// stack of frames: an object, an array, a string, a number, a literal (true/false/null, enum,
// const) or a value still to come. Bounded: nesting depth, whitespace runs, number length and the
// number of readings are capped, so a constrained answer cannot grow without end by those.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "worker/sampling/sampler.h"

namespace clusterctl::sampling {

// One node of a compiled schema (see worker/server/response_format.cpp for the keywords).
struct JsonSchemaNode {
  enum Type : uint8_t {
    kObject = 1,
    kArray = 2,
    kString = 4,
    kNumber = 8,
    kInteger = 16,
    kBoolean = 32,
    kNull = 64,
    kAnyType = 127,
  };
  uint8_t types = kAnyType;
  // objects: at most kMaxProperties named properties
  std::vector<std::string> property_names;
  std::vector<int> property_nodes;  // the schema of each property's value; -1: any value
  uint64_t required = 0;            // bit i: property_names[i] must appear
  bool additional_allowed = true;   // keys other than property_names
  int additional_node = -1;         // their values' schema; -1: any value
  // arrays
  int items_node = -1;  // -1: any value
  int min_items = 0;
  int max_items = -1;  // -1: no limit
  // strings (characters, an escape counting as one)
  int min_length = 0;
  int max_length = -1;
  // enum / const: the value is one of these JSON texts, byte for byte; empty: no such restriction
  std::vector<std::string> literals;
  // anyOf: the value matches one of these nodes (the fields above are then unused)
  std::vector<int> any_of;
};

struct JsonSchema {
  std::vector<JsonSchemaNode> nodes;  // nodes[0] is the root
  static constexpr size_t kMaxProperties = 64;
  static constexpr size_t kMaxLiterals = 64;
};

// Limits of what the matcher accepts (documented in docs/api.md).
inline constexpr int kJsonMaxDepth = 32;  // nesting of objects and arrays
// Whitespace between tokens: at most this many bytes in a row, one newline among them, none before
// the value (enough for pretty-printing; a small model cannot spend its answer on blank lines).
inline constexpr int kJsonMaxWhitespaceRun = 12;
inline constexpr int kJsonMaxNumberBytes = 32;  // bytes of one number
inline constexpr size_t kJsonMaxReadings = 64;  // ways (anyOf) the text is followed at once

class JsonMatcher {
 public:
  // `schema` null: any JSON value whose top level is an object (response_format json_object).
  explicit JsonMatcher(std::shared_ptr<const JsonSchema> schema);
  // Appends `bytes`; false (and the matcher is then dead) when the text stops being a valid start.
  bool feed(std::string_view bytes);
  // Whether the text so far could go on to a valid value (false once feed() failed).
  bool alive() const { return !paths_.empty(); }
  // Whether the text so far is a whole valid value.
  bool complete() const;

 private:
  struct Frame {
    uint8_t kind = 0;
    uint8_t state = 0;
    uint8_t esc = 0;               // strings and keys: 1 after '\', 2..5 in \uXXXX
    uint8_t cont = 0;              // strings and keys: UTF-8 continuation bytes still due
    uint8_t lo = 0x80, hi = 0xBF;  // the range of the next continuation byte
    int node = -1;
    int count = 0;      // array items, string characters, number bytes, literal position, key bytes
    int property = -1;  // object: the property whose value is being read (-1: an additional key)
    uint64_t seen = 0;  // object: properties seen; literal: candidates still matching
    uint64_t cand = 0;  // object key: properties whose name matches the key so far
  };
  struct Path {
    std::vector<Frame> stack;
    int ws_run = 0;    // whitespace bytes in a row
    int newlines = 0;  // newlines among them
  };
  enum class Step { consumed, rejected, pass_up };
  void feed_path(Path path, unsigned char c, std::vector<Path>& out) const;
  Step step_frame(Path& path, unsigned char c, std::vector<Path>& out, bool& expanded) const;
  bool start_value(Path& path, int node, unsigned char c, std::vector<Path>& out, bool& expanded) const;
  const JsonSchemaNode* node(int i) const;
  bool frame_can_end(const Frame& f) const;
  const std::vector<std::string>& literals_of(const Frame& f) const;

  std::shared_ptr<const JsonSchema> schema_;
  std::vector<Path> paths_, next_;
};

// Lets only tokens through whose text keeps the output a valid start of the value, and the
// end-of-generation tokens only once the value is complete.
class JsonTokenConstraint : public TokenConstraint {
 public:
  // `token_text[id]`: the bytes token id adds to the output ("" for control tokens, which are refused).
  // `strip_first_space`: the answer's first token loses a leading space (SentencePiece's, as the
  // server's decoder removes it), so the matcher reads what the client gets.
  JsonTokenConstraint(std::shared_ptr<const JsonSchema> schema,
                      std::shared_ptr<const std::vector<std::string>> token_text, std::vector<int32_t> end_tokens,
                      bool strip_first_space = false);
  bool allows(int32_t token) const override;
  void accept(int32_t token) override;
  bool complete() const { return matcher_.complete(); }

 private:
  JsonMatcher matcher_;
  std::shared_ptr<const std::vector<std::string>> token_text_;
  std::string_view text_of(int32_t token) const;
  // Which bytes may come next, worked out once per step (a scan of the vocabulary then fully
  // checks only the tokens whose first byte may come).
  const std::array<bool, 256>& next_bytes() const;

  std::vector<int32_t> end_tokens_;
  bool strip_first_space_;
  bool at_start_ = true;
  mutable std::array<bool, 256> next_bytes_{};
  mutable bool next_bytes_known_ = false;
};

}  // namespace clusterctl::sampling
