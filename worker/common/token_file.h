#pragma once
#include <string>

namespace clusterctl {

// The API token in a token file (the server's --token-file, a client's, the cluster file's
// api.token_file): the file's one word, surrounding whitespace dropped. Throws clusterctl::Error
// for an unreadable or empty file, or one holding more than one word.
std::string read_token_file(const std::string& path);

}  // namespace clusterctl
