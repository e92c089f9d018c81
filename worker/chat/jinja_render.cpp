// Renders a parsed template: the statements (output, if, for, set, macro definitions) here,
// expressions in jinja_render_expressions.cpp, methods/filters/tests in jinja_render_filters.cpp.
#include <utility>

#include "worker/chat/jinja_parser.h"
#include "worker/chat/jinja_renderer.h"

namespace clusterctl::chat {

namespace detail {

using ast::Body;
using ast::Node;

std::string kind_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined:
      return "an undefined value";
    case Value::Kind::none:
      return "none";
    case Value::Kind::boolean:
      return "a boolean";
    case Value::Kind::integer:
      return "an integer";
    case Value::Kind::floating:
      return "a float";
    case Value::Kind::string:
      return "a string";
    case Value::Kind::list:
      return "a list";
    case Value::Kind::dict:
      return "a dict";
  }
  return "?";
}

Renderer::Renderer(const std::string& src, const Value& context) : src_(src) {
  frames_.emplace_back();
  if (context.is_dict()) {
    for (const auto& [k, v] : context.entries()) frames_.back()[k] = v;
  }
}

std::string Renderer::run(const Body& body) {
  render(body);
  return std::move(out_);
}

void Renderer::fail(size_t offset, const std::string& what) const {
  throw TemplateError("chat template: " + what + " at " + describe_position(src_, offset));
}

Flow Renderer::render(const Body& body) {
  for (const auto& node : body) {
    Flow f = render(*node);
    if (f != Flow::normal) return f;
  }
  return Flow::normal;
}

Flow Renderer::render(const Node& n) {
  switch (n.kind) {
    case Node::Kind::text:
      out_ += n.text;
      return Flow::normal;
    case Node::Kind::output:
      out_ += eval(*n.expr).str();
      return Flow::normal;
    case Node::Kind::if_:
      for (const auto& [cond, body] : n.branches) {
        if (eval(*cond).truthy()) return render(body);
      }
      return render(n.else_body);
    case Node::Kind::for_:
      return render_for(n);
    case Node::Kind::set: {
      Value v;
      if (n.expr) {
        v = eval(*n.expr);
      } else {
        std::string saved = std::move(out_);
        out_.clear();
        render(n.body);
        v = Value::string(std::move(out_));
        out_ = std::move(saved);
      }
      if (n.attribute.empty()) {
        frames_.back()[n.targets[0]] = std::move(v);
      } else {
        Value target = lookup(n.targets[0]);
        if (!target.is_namespace())
          fail(n.offset, "'" + n.targets[0] + "' is not a namespace, so '" + n.targets[0] + "." + n.attribute +
                             "' cannot be set");
        target.set(n.attribute, std::move(v));
      }
      return Flow::normal;
    }
    case Node::Kind::macro:
      macros_[n.targets[0]] = &n;
      return Flow::normal;
    case Node::Kind::break_:
      return Flow::break_;
    case Node::Kind::continue_:
      return Flow::continue_;
  }
  return Flow::normal;
}

Flow Renderer::render_for(const Node& n) {
  Value iterable = eval(*n.expr);
  std::vector<Value> items;
  switch (iterable.kind()) {
    case Value::Kind::undefined:
      break;
    case Value::Kind::list:
      items = iterable.items();
      break;
    case Value::Kind::dict:
      for (const auto& entry : iterable.entries()) items.push_back(Value::string(entry.first));
      break;
    case Value::Kind::string:
      for (char c : iterable.as_string()) items.push_back(Value::string(std::string(1, c)));
      break;
    default:
      fail(n.expr->offset, "cannot loop over " + kind_name(iterable));
  }
  if (n.loop_filter) {
    std::vector<Value> kept;
    for (auto& item : items) {
      frames_.emplace_back();
      bind_targets(n, item);
      if (eval(*n.loop_filter).truthy()) kept.push_back(item);
      frames_.pop_back();
    }
    items = std::move(kept);
  }
  if (items.empty()) return render(n.else_body);
  const int64_t length = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < length; ++i) {
    frames_.emplace_back();
    bind_targets(n, items[static_cast<size_t>(i)]);
    Value loop = Value::dict({
        {"index0", Value::integer(i)},
        {"index", Value::integer(i + 1)},
        {"revindex0", Value::integer(length - i - 1)},
        {"revindex", Value::integer(length - i)},
        {"first", Value::boolean(i == 0)},
        {"last", Value::boolean(i == length - 1)},
        {"length", Value::integer(length)},
        {"previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value()},
        {"nextitem", i + 1 < length ? items[static_cast<size_t>(i + 1)] : Value()},
    });
    frames_.back()["loop"] = loop;
    Flow f = render(n.body);
    frames_.pop_back();
    if (f == Flow::break_) break;
  }
  return Flow::normal;
}

void Renderer::bind_targets(const Node& n, const Value& item) {
  if (n.targets.size() == 1) {
    frames_.back()[n.targets[0]] = item;
    return;
  }
  if (!item.is_list() || item.items().size() != n.targets.size()) {
    fail(n.offset,
         "cannot unpack " + kind_name(item) + " into " + std::to_string(n.targets.size()) + " loop variables");
  }
  for (size_t k = 0; k < n.targets.size(); ++k) frames_.back()[n.targets[k]] = item.items()[k];
}
}  // namespace detail

JinjaTemplate::JinjaTemplate(std::string source)
    : source_(std::move(source)), body_(std::make_unique<ast::Body>(parse_template(source_))) {}
JinjaTemplate::~JinjaTemplate() = default;
JinjaTemplate::JinjaTemplate(JinjaTemplate&&) noexcept = default;
JinjaTemplate& JinjaTemplate::operator=(JinjaTemplate&&) noexcept = default;

std::string JinjaTemplate::render(const Value& context) const { return detail::Renderer(source_, context).run(*body_); }

}  // namespace clusterctl::chat
