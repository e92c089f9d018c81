#pragma once
// Syntax tree of the Jinja subset: produced by jinja_parser.cpp (with jinja_expression_parser.cpp),
// walked by the Renderer of jinja_renderer.h.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "worker/chat/jinja_value.h"

namespace clusterctl::chat::ast {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal,      // value
    name,         // name
    list,         // args = elements
    dict,         // kwargs = entries (keys are literal strings)
    attribute,    // object . name
    index,        // object [ args[0] ]
    slice,        // object [ args[0] : args[1] : args[2] ]  (null ExprPtr = omitted)
    call,         // object ( args, kwargs )
    filter,       // object | name ( args, kwargs )
    test,         // object is [not] name ( args )
    unary,        // op object
    binary,       // object op args[0]
    conditional,  // args[0] if object else args[1]
  };
  Kind kind;
  size_t offset = 0;  // position in the template source, for error messages
  Value value;
  std::string name;  // name / attribute / filter / test / operator
  bool negated = false;
  ExprPtr object;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind { text, output, if_, for_, set, break_, continue_, macro };
  Kind kind;
  size_t offset = 0;
  std::string text;  // text
  ExprPtr expr;      // output: expression; set: value; for: iterable
  // if: one (condition, body) per if/elif branch, then else_body.
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;                         // for: loop body
  Body else_body;                    // if: else; for: body run when the iterable is empty
  std::vector<std::string> targets;  // for: loop variables; set: target name
  std::string attribute;             // set: `ns.attr` target attribute (empty for a plain name)
  ExprPtr loop_filter;               // for x in xs if cond
  // macro: targets[0] is its name, body its body; its parameters in order, each with its
  // default (null when none).
  std::vector<std::pair<std::string, ExprPtr>> params;
};

}  // namespace clusterctl::chat::ast
