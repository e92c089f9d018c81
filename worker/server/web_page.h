#pragma once
#include <string_view>

namespace clusterctl::server {

// worker/server/web/index.html, compiled into the binary (web_page.cpp is generated
// by worker/server/web/embed_web_page.cmake at build time).
std::string_view web_chat_page();

}  // namespace clusterctl::server
