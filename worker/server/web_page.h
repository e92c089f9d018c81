#pragma once
#include <string_view>

namespace clusterctl::server {

// worker/server/web/index.html, compiled into the binary (web_page.cpp is generated
// by worker/server/web/embed_web_page.cmake at build time).
std::string_view web_chat_page();
// worker/server/web/dashboard.html (dashboard_page.cpp): the cluster at a glance, at /dashboard.
std::string_view web_dashboard_page();

}  // namespace clusterctl::server
