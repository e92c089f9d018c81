# Build step: turns web/index.html into a C++ raw string literal (web_page.cpp).
# Usage: cmake -DINPUT=index.html -DOUTPUT=web_page.cpp -P embed_web_page.cmake
file(READ "${INPUT}" content)
string(FIND "${content}" ")clusterctl_html\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )clusterctl_html\"")
endif()
file(WRITE "${OUTPUT}.tmp"
"// Generated from worker/server/web/index.html by embed_web_page.cmake; do not edit.
#include \"worker/server/web_page.h\"

namespace clusterctl::server {

std::string_view web_chat_page() {
  static constexpr std::string_view kPage = R\"clusterctl_html(${content})clusterctl_html\";
  return kPage;
}

}  // namespace clusterctl::server
")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
