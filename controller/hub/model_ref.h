#pragma once
// A model named as on Hugging Face, as `llama-server -hf` takes it: "ORG/NAME" (the repo's one
// model, or its Q4_K_M), "ORG/NAME:QUANT" (the quant by name, any case) or "ORG/NAME/FILE.gguf"
// (that file; a folder inside the repo is allowed). An "hf.co/" prefix (Ollama's spelling) is
// accepted. Local paths ("./x", "/x", "~/x", "dir/model.gguf") are never names.
#include <optional>
#include <string>
#include <string_view>

namespace clusterctl::hub {

struct ModelRef {
  std::string repo;   // "ORG/NAME"
  std::string quant;  // "Q4_K_M" as given, or ""
  std::string file;   // a path inside the repo ("sub/x.gguf"), or ""

  std::string str() const;  // as the user would write it
};

// The name parsed, or nullopt when `text` is not a Hugging Face model name.
std::optional<ModelRef> parse_model_ref(std::string_view text);

// A model argument of run/serve/chat/bench/pull or a cluster file's `model:`: a name to pull when
// it is one and no file of that name exists here (a file always wins).
std::optional<ModelRef> model_ref_to_pull(const std::string& model_arg);

}  // namespace clusterctl::hub
