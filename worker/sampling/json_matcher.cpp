#include "worker/sampling/json_matcher.h"

#include <algorithm>
#include <cstring>

namespace clusterctl::sampling {

namespace {

enum Kind : uint8_t { kValue = 1, kObject, kArray, kString, kNumber, kLiteral };
// Object states: after '{', inside a key, after a key, after a value, after ','.
enum ObjectState : uint8_t { kObjStart, kObjKey, kObjColon, kObjAfter, kObjNext };
enum ArrayState : uint8_t { kArrStart, kArrAfter, kArrNext };
// Number states after: '-', a leading '0', integer digits, '.', fraction digits, 'e', the exponent's sign,
// exponent digits.
enum NumberState : uint8_t { kNumMinus = 1, kNumZero, kNumInt, kNumDot, kNumFrac, kNumE, kNumESign, kNumExp };

bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool number_can_end(uint8_t state) {
  return state == kNumZero || state == kNumInt || state == kNumFrac || state == kNumExp;
}
uint64_t all_bits(size_t n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

const std::vector<std::string>& builtin_literals() {
  static const std::vector<std::string> lits = {"true", "false", "null"};
  return lits;
}

enum class Str { reject, content, closed };
// One byte of a string's content (after the opening quote). `new_char`: the byte starts a character.
// UTF-8 is checked as the decoder does (no overlong forms, surrogates or code points past U+10FFFF:
// `lo`..`hi` is the range of the next continuation byte), so what the matcher counts is what is sent.
Str string_byte(uint8_t& esc, uint8_t& cont, uint8_t& lo, uint8_t& hi, unsigned char c, bool& new_char) {
  new_char = false;
  if (esc == 1) {
    if (c == 'u') {
      esc = 2;
      return Str::content;
    }
    if (std::strchr("\"\\/bfnrt", c) == nullptr || c == 0) return Str::reject;
    esc = 0;
    return Str::content;
  }
  if (esc >= 2) {  // \uXXXX: esc 2..5 wait for the four hex digits
    if (!is_hex(c)) return Str::reject;
    esc = esc == 5 ? 0 : esc + 1;
    return Str::content;
  }
  if (cont > 0) {
    if (c < lo || c > hi) return Str::reject;
    --cont;
    lo = 0x80;
    hi = 0xBF;
    return Str::content;
  }
  if (c == '"') return Str::closed;
  if (c < 0x20) return Str::reject;
  if (c == '\\') {
    esc = 1;
  } else if (c >= 0x80) {
    lo = 0x80;
    hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      cont = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      cont = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      cont = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return Str::reject;
    }
  }
  new_char = true;
  return Str::content;
}

}  // namespace

JsonMatcher::JsonMatcher(std::shared_ptr<const JsonSchema> schema) : schema_(std::move(schema)) {
  if (!schema_) {
    auto object_only = std::make_shared<JsonSchema>();
    object_only->nodes.emplace_back().types = JsonSchemaNode::kObject;
    schema_ = std::move(object_only);
  }
  Path start;
  Frame root;
  root.kind = kValue;
  root.node = 0;
  root.state = 1;  // the answer starts with the value itself, not with whitespace
  start.stack.push_back(root);
  paths_.push_back(std::move(start));
}

const JsonSchemaNode* JsonMatcher::node(int i) const {
  return i >= 0 && static_cast<size_t>(i) < schema_->nodes.size() ? &schema_->nodes[i] : nullptr;
}

const std::vector<std::string>& JsonMatcher::literals_of(const Frame& f) const {
  return f.state == 0 ? node(f.node)->literals : builtin_literals();
}

bool JsonMatcher::frame_can_end(const Frame& f) const {
  if (f.kind == kNumber) return number_can_end(f.state);
  if (f.kind == kLiteral) {
    const auto& lits = literals_of(f);
    for (size_t i = 0; i < lits.size(); ++i)
      if ((f.seen >> i & 1) && lits[i].size() == static_cast<size_t>(f.count)) return true;
  }
  return false;
}

bool JsonMatcher::complete() const {
  return std::any_of(paths_.begin(), paths_.end(), [&](const Path& p) {
    return p.stack.empty() || (p.stack.size() == 1 && frame_can_end(p.stack.back()));
  });
}

bool JsonMatcher::feed(std::string_view bytes) {
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    next_.clear();
    for (Path& p : paths_) feed_path(std::move(p), c, next_);
    paths_.swap(next_);
    if (paths_.empty()) break;
  }
  next_.clear();
  return !paths_.empty();
}

void JsonMatcher::feed_path(Path path, unsigned char c, std::vector<Path>& out) const {
  if (is_ws(c)) {
    if (++path.ws_run > kJsonMaxWhitespaceRun) return;
    if (c == '\n' && ++path.newlines > 1) return;
  } else {
    path.ws_run = 0;
    path.newlines = 0;
  }
  while (!path.stack.empty()) {  // an empty stack is a finished value: nothing may follow it
    bool expanded = false;
    const Step s = step_frame(path, c, out, expanded);
    if (expanded || s == Step::rejected) return;
    if (s == Step::consumed) {
      if (out.size() < kJsonMaxReadings) out.push_back(std::move(path));
      return;
    }
    path.stack.pop_back();  // the top value ended before c: its parent reads c
  }
}

// Starts a value of `node_index` with byte c (not whitespace) on top of `path`.
bool JsonMatcher::start_value(Path& path, int node_index, unsigned char c, std::vector<Path>& out,
                              bool& expanded) const {
  const JsonSchemaNode* n = node(node_index);
  if (n && !n->any_of.empty()) {
    expanded = true;
    for (int alt : n->any_of) {
      Path p = path;
      Frame f;
      f.kind = kValue;
      f.node = alt;
      p.stack.push_back(f);
      feed_path(std::move(p), c, out);
    }
    return true;
  }
  const uint8_t types = n ? n->types : static_cast<uint8_t>(JsonSchemaNode::kAnyType);
  Frame f;
  f.node = node_index;
  if (n && !n->literals.empty()) {
    f.kind = kLiteral;
    f.state = 0;
    for (size_t i = 0; i < n->literals.size(); ++i)
      if (!n->literals[i].empty() && static_cast<unsigned char>(n->literals[i][0]) == c) f.seen |= uint64_t{1} << i;
    f.count = 1;
    if (f.seen == 0) return false;
    path.stack.push_back(f);
    return true;
  }
  if ((c == '{' || c == '[') && path.stack.size() >= static_cast<size_t>(kJsonMaxDepth)) return false;
  if (c == '{' && (types & JsonSchemaNode::kObject)) {
    f.kind = kObject;
    f.state = kObjStart;
  } else if (c == '[' && (types & JsonSchemaNode::kArray)) {
    f.kind = kArray;
    f.state = kArrStart;
  } else if (c == '"' && (types & JsonSchemaNode::kString)) {
    f.kind = kString;
  } else if ((c == '-' || is_digit(c)) && (types & (JsonSchemaNode::kNumber | JsonSchemaNode::kInteger))) {
    f.kind = kNumber;
    f.state = c == '-' ? kNumMinus : c == '0' ? kNumZero : kNumInt;
    f.count = 1;
    f.cand = (types & JsonSchemaNode::kNumber) ? 0 : 1;  // integers only: no fraction, no exponent
  } else if (c == 't' || c == 'f' || c == 'n') {
    f.kind = kLiteral;
    f.state = 1;
    const auto& lits = builtin_literals();
    const uint8_t need[] = {JsonSchemaNode::kBoolean, JsonSchemaNode::kBoolean, JsonSchemaNode::kNull};
    for (size_t i = 0; i < lits.size(); ++i)
      if ((types & need[i]) && static_cast<unsigned char>(lits[i][0]) == c) f.seen |= uint64_t{1} << i;
    f.count = 1;
    if (f.seen == 0) return false;
  } else {
    return false;
  }
  path.stack.push_back(f);
  return true;
}

JsonMatcher::Step JsonMatcher::step_frame(Path& path, unsigned char c, std::vector<Path>& out, bool& expanded) const {
  Frame& f = path.stack.back();
  const bool ws = is_ws(c);
  switch (f.kind) {
    case kValue: {
      if (ws) return f.state == 1 ? Step::rejected : Step::consumed;
      const int n = f.node;
      path.stack.pop_back();
      return start_value(path, n, c, out, expanded) ? Step::consumed : Step::rejected;
    }
    case kObject: {
      const JsonSchemaNode* n = node(f.node);
      static const std::vector<std::string> kNoNames;
      const auto& names = n ? n->property_names : kNoNames;
      const bool additional = n ? n->additional_allowed : true;
      const uint64_t unseen = all_bits(names.size()) & ~f.seen;
      const bool can_close = ((n ? n->required : 0) & ~f.seen) == 0;
      const bool may_add_key = additional || unseen != 0;
      switch (f.state) {
        case kObjStart:
        case kObjNext:
          if (ws) return Step::consumed;
          if (c == '"' && may_add_key) {
            f.state = kObjKey;
            f.count = 0;
            f.cand = all_bits(names.size());
            return Step::consumed;
          }
          if (c == '}' && f.state == kObjStart && can_close) {
            path.stack.pop_back();
            return Step::consumed;
          }
          return Step::rejected;
        case kObjKey: {
          bool new_char = false;
          const bool in_escape = c == '\\' || f.esc != 0;
          const Str r = string_byte(f.esc, f.cont, f.lo, f.hi, c, new_char);
          if (r == Str::reject) return Step::rejected;
          if (r == Str::closed) {
            f.property = -1;
            for (size_t i = 0; i < names.size(); ++i)
              if ((f.cand >> i & 1) && names[i].size() == static_cast<size_t>(f.count))
                f.property = static_cast<int>(i);
            if (f.property >= 0 && (f.seen >> f.property & 1)) return Step::rejected;  // a duplicate key
            if (f.property < 0 && !additional) return Step::rejected;
            f.state = kObjColon;
            return Step::consumed;
          }
          if (in_escape) {
            if (!additional) return Step::rejected;
            f.cand = 0;  // an escaped key is read as an additional one
          } else {
            uint64_t cand = 0;
            for (size_t i = 0; i < names.size(); ++i)
              if ((f.cand >> i & 1) && names[i].size() > static_cast<size_t>(f.count) &&
                  static_cast<unsigned char>(names[i][f.count]) == c)
                cand |= uint64_t{1} << i;
            f.cand = cand;
          }
          ++f.count;
          if (!additional && (f.cand & unseen) == 0) return Step::rejected;
          return Step::consumed;
        }
        case kObjColon: {
          if (ws) return Step::consumed;
          if (c != ':') return Step::rejected;
          f.state = kObjAfter;
          int child = n ? n->additional_node : -1;
          if (f.property >= 0) {
            f.seen |= uint64_t{1} << f.property;
            child = n->property_nodes[f.property];
          }
          Frame v;
          v.kind = kValue;
          v.node = child;
          path.stack.push_back(v);  // f is not used after this
          return Step::consumed;
        }
        case kObjAfter:
          if (ws) return Step::consumed;
          if (c == ',' && may_add_key) {
            f.state = kObjNext;
            return Step::consumed;
          }
          if (c == '}' && can_close) {
            path.stack.pop_back();
            return Step::consumed;
          }
          return Step::rejected;
      }
      return Step::rejected;
    }
    case kArray: {
      const JsonSchemaNode* n = node(f.node);
      const int min_items = n ? n->min_items : 0, max_items = n ? n->max_items : -1;
      const int items = n ? n->items_node : -1;
      if (ws) return Step::consumed;
      if (f.state == kArrAfter) {
        if (c == ',' && (max_items < 0 || f.count < max_items)) {
          f.state = kArrNext;
          return Step::consumed;
        }
        if (c == ']' && f.count >= min_items) {
          path.stack.pop_back();
          return Step::consumed;
        }
        return Step::rejected;
      }
      if (f.state == kArrStart && c == ']') {
        if (min_items > 0) return Step::rejected;
        path.stack.pop_back();
        return Step::consumed;
      }
      if (max_items >= 0 && f.count >= max_items) return Step::rejected;
      ++f.count;
      f.state = kArrAfter;
      return start_value(path, items, c, out, expanded) ? Step::consumed : Step::rejected;
    }
    case kString: {
      const JsonSchemaNode* n = node(f.node);
      bool new_char = false;
      const Str r = string_byte(f.esc, f.cont, f.lo, f.hi, c, new_char);
      if (r == Str::reject) return Step::rejected;
      if (r == Str::closed) {
        if (n && f.count < n->min_length) return Step::rejected;
        path.stack.pop_back();
        return Step::consumed;
      }
      if (new_char) {
        if (n && n->max_length >= 0 && f.count >= n->max_length) return Step::rejected;
        ++f.count;
      }
      return Step::consumed;
    }
    case kNumber: {
      const bool integer_only = f.cand != 0;
      uint8_t next = 0;
      const bool digit = is_digit(c), e = c == 'e' || c == 'E';
      switch (f.state) {
        case kNumMinus:
          next = c == '0' ? kNumZero : digit ? kNumInt : 0;
          break;
        case kNumZero:
        case kNumInt:
          next = digit && f.state == kNumInt ? kNumInt : c == '.' ? kNumDot : e ? kNumE : 0;
          break;
        case kNumDot:
          next = digit ? kNumFrac : 0;
          break;
        case kNumFrac:
          next = digit ? kNumFrac : e ? kNumE : 0;
          break;
        case kNumE:
          next = c == '+' || c == '-' ? kNumESign : digit ? kNumExp : 0;
          break;
        case kNumESign:
        case kNumExp:
          next = digit ? kNumExp : 0;
          break;
      }
      if (integer_only && (next == kNumDot || next == kNumE)) next = 0;
      if (next != 0) {
        if (++f.count > kJsonMaxNumberBytes) return Step::rejected;
        f.state = next;
        return Step::consumed;
      }
      return number_can_end(f.state) ? Step::pass_up : Step::rejected;
    }
    case kLiteral: {
      const auto& lits = literals_of(f);
      uint64_t still = 0;
      bool ended = false;
      for (size_t i = 0; i < lits.size(); ++i) {
        if (!(f.seen >> i & 1)) continue;
        if (lits[i].size() == static_cast<size_t>(f.count)) ended = true;
        if (lits[i].size() > static_cast<size_t>(f.count) && static_cast<unsigned char>(lits[i][f.count]) == c)
          still |= uint64_t{1} << i;
      }
      if (still != 0) {
        f.seen = still;
        ++f.count;
        return Step::consumed;
      }
      return ended ? Step::pass_up : Step::rejected;
    }
  }
  return Step::rejected;
}

JsonTokenConstraint::JsonTokenConstraint(std::shared_ptr<const JsonSchema> schema,
                                         std::shared_ptr<const std::vector<std::string>> token_text,
                                         std::vector<int32_t> end_tokens, bool strip_first_space)
    : matcher_(std::move(schema)),
      token_text_(std::move(token_text)),
      end_tokens_(std::move(end_tokens)),
      strip_first_space_(strip_first_space) {}

std::string_view JsonTokenConstraint::text_of(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= token_text_->size()) return {};
  std::string_view text = (*token_text_)[token];
  if (at_start_ && strip_first_space_ && !text.empty() && text[0] == ' ') text.remove_prefix(1);
  return text;
}

bool JsonTokenConstraint::allows(int32_t token) const {
  if (std::find(end_tokens_.begin(), end_tokens_.end(), token) != end_tokens_.end()) return matcher_.complete();
  const std::string_view text = text_of(token);
  if (text.empty()) return false;  // control tokens (and a lone first space) add nothing to the value
  if (!next_bytes()[static_cast<unsigned char>(text[0])]) return false;
  if (text.size() == 1) return true;
  JsonMatcher trial = matcher_;
  return trial.feed(text);
}

const std::array<bool, 256>& JsonTokenConstraint::next_bytes() const {
  if (!next_bytes_known_) {
    for (int c = 0; c < 256; ++c) {
      JsonMatcher trial = matcher_;
      const char byte = static_cast<char>(c);
      next_bytes_[c] = trial.feed(std::string_view(&byte, 1));
    }
    next_bytes_known_ = true;
  }
  return next_bytes_;
}

void JsonTokenConstraint::accept(int32_t token) {
  matcher_.feed(text_of(token));
  at_start_ = false;
  next_bytes_known_ = false;
}

}  // namespace clusterctl::sampling
