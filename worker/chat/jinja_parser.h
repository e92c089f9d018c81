#pragma once
#include <string>

#include "worker/chat/jinja_ast.h"
#include "worker/chat/jinja_template.h"

namespace clusterctl::chat {

// Parses a whole template; throws TemplateError naming the line and column.
ast::Body parse_template(const std::string& source);

}  // namespace clusterctl::chat
