# Build step: turns a page of web/ into a C++ raw string literal returned by FUNCTION.
# Usage: cmake -DINPUT=index.html -DOUTPUT=web_page.cpp -DFUNCTION=web_chat_page -P embed_web_page.cmake
file(READ "${INPUT}" content)
string(FIND "${content}" ")clusterctl_html\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )clusterctl_html\"")
endif()
get_filename_component(name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp"
"// Generated from worker/server/web/${name} by embed_web_page.cmake; do not edit.
#include \"worker/server/web_page.h\"

namespace clusterctl::server {

std::string_view ${FUNCTION}() {
  static constexpr std::string_view kPage = R\"clusterctl_html(${content})clusterctl_html\";
  return kPage;
}

}  // namespace clusterctl::server
")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
