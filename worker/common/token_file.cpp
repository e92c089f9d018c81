#include "worker/common/token_file.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "worker/common/error.h"

namespace clusterctl {

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read the token file '" + path + "': check the path and its permissions");
  // A token is a line; a file larger than any token is not one.
  constexpr std::streamsize kMaxBytes = 4096;
  std::string token(kMaxBytes + 1, '\0');
  in.read(token.data(), kMaxBytes + 1);
  token.resize(static_cast<size_t>(in.gcount()));
  if (token.size() > static_cast<size_t>(kMaxBytes))
    throw Error("the token file '" + path + "' is larger than 4 KiB: put only the API token in it");
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.erase(0, 1);
  if (token.empty()) throw Error("the token file '" + path + "' is empty: put the API token in it");
  if (token.find_first_of(" \t\r\n") != std::string::npos)
    throw Error("the token file '" + path + "' holds more than one word: put only the API token in it");
  return token;
}

}  // namespace clusterctl
