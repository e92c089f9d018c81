// `clusterctl tokenize MODEL.gguf (TEXT | --file F)`: a model's token ids for a text.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/tokenizer/tokenizer.h"
#include "worker/tokenizer/utf8.h"
#include "worker/tools/engine_verbs.h"
#include "worker/tools/options.h"
#include "worker/tools/tokenizer_vectors.h"

namespace clusterctl::cli {
namespace {

using tokenizer::TokenId;
using tokenizer::Tokenizer;

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the file to tokenize");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string ids_line(const std::vector<TokenId>& ids) {
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  return line;
}

// Each id with the text it stands for ("piece"; a byte token holding part of a character
// shows U+FFFD there) and its vocabulary entry ("token", e.g. "<0xF0>" or "Ġworld").
nlohmann::json ids_json(const Tokenizer& tok, const std::vector<TokenId>& ids) {
  nlohmann::json tokens = nlohmann::json::array();
  for (TokenId id : ids)
    tokens.push_back({{"id", id},
                      {"piece", tokenizer::utf8::sanitize(tok.piece(id, true))},
                      {"token", tokenizer::utf8::sanitize(tok.vocab().text(id))}});
  return {{"ids", ids}, {"tokens", tokens}};
}

// The llama.cpp test-vector mode: one .out line per .inp string, made as the vectors were
// (no BOS/EOS, special-token text treated as plain text).
int print_vectors(const Tokenizer& tok, const std::string& inp_path, bool json) {
  auto inputs = tokenizer::read_vector_inputs(inp_path);
  if (json) {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& text : inputs) {
      auto j = ids_json(tok, tok.tokenize(text, false, false));
      j["text"] = tokenizer::utf8::sanitize(text);
      all.push_back(std::move(j));
    }
    std::cout << all.dump(2) << "\n";
    return 0;
  }
  for (const auto& text : inputs) std::cout << tokenizer::format_vector_line(tok.tokenize(text, false, false)) << "\n";
  return 0;
}

}  // namespace

int tokenize_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("model", po::value<std::string>()->required(), "GGUF model file (its tokenizer is used)")(
      "text", po::value<std::string>(), "text to tokenize")("file", po::value<std::string>(),
                                                            "tokenize the contents of this file instead")(
      "no-bos", po::bool_switch(), "do not add the BOS/EOS tokens the model asks for")(
      "parse-special", po::bool_switch(), "turn special-token text such as <|eot_id|> into that token")(
      "vectors", po::bool_switch(),
      "--file is a llama.cpp .inp test-vector file: print one .out line per string (no BOS, no special parsing)")(
      "json", po::bool_switch(), "print JSON: the ids and the text of each token");
  po::positional_options_description pos;
  pos.add("model", 1).add("text", 1);
  auto vm = parse_options(
      argc, argv, "clusterctl tokenize MODEL.gguf (TEXT | --file F [--vectors]) [--no-bos] [--parse-special] [--json]",
      opts, pos);
  if (!vm) return 0;

  bool has_text = vm->count("text") > 0, has_file = vm->count("file") > 0;
  if (has_text == has_file)
    throw Error(std::string("tokenize: give either the TEXT to tokenize or --file F") + (has_text ? ", not both" : "") +
                " (see 'clusterctl tokenize --help')");
  bool vectors = (*vm)["vectors"].as<bool>();
  if (vectors && !has_file) throw Error("tokenize: --vectors reads a .inp file; give it with --file F");
  bool json = (*vm)["json"].as<bool>();

  gguf::GgufFile model((*vm)["model"].as<std::string>());
  auto tok = Tokenizer::from_gguf(model);
  if (!tok->warning().empty()) std::cerr << "warning: " << tok->warning() << "\n";

  if (vectors) return print_vectors(*tok, (*vm)["file"].as<std::string>(), json);

  std::string text = has_text ? (*vm)["text"].as<std::string>() : read_whole_file((*vm)["file"].as<std::string>());
  auto ids = tok->tokenize(text, !(*vm)["no-bos"].as<bool>(), (*vm)["parse-special"].as<bool>());
  if (json)
    std::cout << ids_json(*tok, ids).dump(2) << "\n";
  else
    std::cout << ids_line(ids) << "\n";
  return 0;
}

}  // namespace clusterctl::cli
