#include "tokenizer/jinja_render.h"

#include <ctime>
#include <exception>
#include <map>
#include <memory>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_objects.h"

namespace qwen3vl::jinja {

namespace {

[[noreturn]] void fail(const std::string& message) { throw TemplateError(message); }

// Variables of one frame: the template's top level, a loop iteration, a macro call, a with / set / filter block.
struct Scope {
  std::map<std::string, Value> variables;
  std::shared_ptr<Scope> parent;

  const Value* find(const std::string& name) const {
    for (const Scope* scope = this; scope; scope = scope->parent.get()) {
      const auto it = scope->variables.find(name);
      if (it != scope->variables.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopePtr = std::shared_ptr<Scope>;

ScopePtr inner(const ScopePtr& parent) {
  auto scope = std::make_shared<Scope>();
  scope->parent = parent;
  return scope;
}

// jinja2's LoopContext over the (already filtered) items of a for loop.
class LoopObject : public Object, public std::enable_shared_from_this<LoopObject> {
 public:
  explicit LoopObject(std::shared_ptr<const std::vector<Value>> items) : items_(std::move(items)) {}
  void advance(size_t index) { index_ = index; }

  std::string type_name() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index_ + 1) + "/" + std::to_string(items_->size()) + ">";
  }
  Value attribute(const std::string& name) override {
    const int64_t index = static_cast<int64_t>(index_), length = static_cast<int64_t>(items_->size());
    if (name == "index") return Value::integer(index + 1);
    if (name == "index0") return Value::integer(index);
    if (name == "revindex") return Value::integer(length - index);
    if (name == "revindex0") return Value::integer(length - index - 1);
    if (name == "first") return Value::boolean(index == 0);
    if (name == "last") return Value::boolean(index + 1 == length);
    if (name == "length") return Value::integer(length);
    if (name == "depth") return Value::integer(1);
    if (name == "depth0") return Value::integer(0);
    if (name == "previtem")
      return index > 0 ? (*items_)[index_ - 1] : Value::undefined("there is no previous item");
    if (name == "nextitem")
      return index + 1 < length ? (*items_)[index_ + 1] : Value::undefined("there is no next item");
    if (name == "cycle") {
      const int64_t current = index;
      return make_function("cycle", [current](Runtime&, CallArgs& args) {
        if (args.positional.empty()) fail("no items for cycling given");
        return args.positional[static_cast<size_t>(current) % args.positional.size()];
      }, "LoopContext");
    }
    if (name == "changed") {
      auto self = shared_from_this();
      return make_function("changed", [self](Runtime&, CallArgs& args) {
        const Value value = Value::list(args.positional, Value::Sequence::Tuple);
        if (self->has_changed_value_ && equals(self->last_changed_value_, value)) return Value::boolean(false);
        self->has_changed_value_ = true;
        self->last_changed_value_ = value;
        return Value::boolean(true);
      }, "LoopContext");
    }
    return Object::attribute(name);
  }

 private:
  std::shared_ptr<const std::vector<Value>> items_;
  size_t index_ = 0;
  bool has_changed_value_ = false;
  Value last_changed_value_;
};

class Interpreter;

class MacroObject : public Object {
 public:
  MacroObject(Interpreter& interpreter, const Stmt& definition, ScopePtr scope)
      : interpreter_(interpreter), definition_(definition), scope_(std::move(scope)) {}
  std::string type_name() const override { return "Macro"; }
  std::string repr() const override { return "<Macro '" + definition_.name + "'>"; }
  bool callable() const override { return true; }
  Value call(Runtime& runtime, CallArgs& args) override;
  void release() override { scope_.reset(); }

 private:
  Interpreter& interpreter_;
  const Stmt& definition_;
  ScopePtr scope_;
};

enum class Flow { Normal, Break, Continue };

class Interpreter final : public Runtime {
 public:
  Interpreter(const DictData& variables, const RenderOptions& options) : variables_(variables), options_(options) {}

  ~Interpreter() {
    for (const auto& object : tracked_) object->release();
  }

  std::string run(const Body& body) {
    std::string out;
    try {
      exec_body(body, std::make_shared<Scope>(), out);
    } catch (const RaisedError& e) {
      throw RenderFailure(line_, e.what(), true);
    } catch (const TemplateError& e) {
      throw RenderFailure(line_, e.what(), false);
    }
    return out;
  }

  // ---- Runtime ----
  Value call(const Value& callee, CallArgs& args) override {
    if (callee.is_undefined()) callee.fail_undefined();
    if (!callee.is_object() || !callee.object().callable()) fail("'" + callee.type_name() + "' object is not callable");
    return callee.object().call(*this, args);
  }
  Value filter(const std::string& name, const Value& value, CallArgs& args) override {
    return apply_filter(*this, name, value, args);
  }
  bool test(const std::string& name, const Value& value, CallArgs& args) override {
    return apply_test(*this, name, value, args);
  }
  void charge(uint64_t units) override {
    work_ += units;
    if (work_ > options_.max_work) fail("the template takes too long to render (work limit reached)");
  }
  size_t max_string_bytes() const override { return options_.max_output_bytes; }
  std::tm now() const override {
    if (options_.clock) return *options_.clock;
    const std::time_t seconds = std::time(nullptr);
    std::tm local{};
    localtime_r(&seconds, &local);
    return local;
  }
  void track(const std::shared_ptr<Object>& object) override { tracked_.push_back(object); }

  Value invoke_macro(const Stmt& definition, const ScopePtr& closure, CallArgs& args);

 private:
  // Keeps the innermost line for error messages: restored when an evaluation returns normally, left as it is
  // when an exception passes.
  class Frame {
   public:
    Frame(Interpreter& interpreter, int line)
        : interpreter_(interpreter), saved_line_(interpreter.line_), exceptions_(std::uncaught_exceptions()) {
      if (++interpreter_.depth_ > interpreter_.options_.max_depth) fail("the template recurses too deeply");
      interpreter_.line_ = line;
      interpreter_.charge(1);
    }
    ~Frame() {
      --interpreter_.depth_;
      if (std::uncaught_exceptions() == exceptions_) interpreter_.line_ = saved_line_;
    }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;

   private:
    Interpreter& interpreter_;
    int saved_line_;
    int exceptions_;
  };

  void append(std::string& out, const std::string& text) const {
    if (out.size() + text.size() > options_.max_output_bytes)
      fail("the rendered text exceeds " + std::to_string(options_.max_output_bytes) + " bytes");
    out += text;
  }

  // ---- statements ----
  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const StmtPtr& stmt : body) {
      const Flow flow = exec(*stmt, scope, out);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
    Frame frame(*this, stmt.line);
    switch (stmt.kind) {
      case Stmt::Kind::Text: append(out, stmt.text); break;
      case Stmt::Kind::Print: append(out, eval(*stmt.expr, scope).str()); break;
      case Stmt::Kind::If:
        for (size_t i = 0; i < stmt.conditions.size(); ++i)
          if (eval(*stmt.conditions[i], scope).truthy()) return exec_body(stmt.bodies[i], scope, out);
        return exec_body(stmt.else_body, scope, out);
      case Stmt::Kind::For: exec_for(stmt, scope, out); break;
      case Stmt::Kind::Set: assign(stmt.target, eval(*stmt.expr, scope), scope); break;
      case Stmt::Kind::SetBlock: {
        Value value = Value::string(render_block(stmt.body, scope));
        if (stmt.expr) value = eval_filters(*stmt.expr, scope, value);
        assign(stmt.target, value, scope);
        break;
      }
      case Stmt::Kind::FilterBlock:
        append(out, eval_filters(*stmt.expr, scope, Value::string(render_block(stmt.body, scope))).str());
        break;
      case Stmt::Kind::Macro: {
        auto macro = std::make_shared<MacroObject>(*this, stmt, scope);
        track(macro);
        scope->variables[stmt.name] = Value::object(macro);
        break;
      }
      case Stmt::Kind::With: {
        ScopePtr with_scope = inner(scope);
        for (size_t i = 0; i < stmt.targets.size(); ++i) assign(stmt.targets[i], eval(*stmt.values[i], scope), with_scope);
        return exec_body(stmt.body, with_scope, out);
      }
      case Stmt::Kind::Generation: return exec_body(stmt.body, inner(scope), out);
      case Stmt::Kind::Break: return Flow::Break;
      case Stmt::Kind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  std::string render_block(const Body& body, const ScopePtr& scope) {
    std::string block;
    exec_body(body, inner(scope), block);
    return block;
  }

  void exec_for(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
    std::vector<Value> items = iterate(eval(*stmt.expr, scope));
    charge(items.size());
    if (stmt.condition) {  // `for x in xs if cond`: the loop (and loop.length) sees only the items that pass
      std::vector<Value> kept;
      for (Value& item : items) {
        ScopePtr test_scope = inner(scope);
        assign(stmt.target, item, test_scope);
        if (eval(*stmt.condition, test_scope).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      exec_body(stmt.else_body, inner(scope), out);
      return;
    }
    auto shared_items = std::make_shared<const std::vector<Value>>(std::move(items));
    auto loop = std::make_shared<LoopObject>(shared_items);
    const Value loop_value = Value::object(loop);
    for (size_t i = 0; i < shared_items->size(); ++i) {
      charge(1);
      loop->advance(i);
      ScopePtr iteration = inner(scope);
      assign(stmt.target, (*shared_items)[i], iteration);
      iteration->variables["loop"] = loop_value;
      if (exec_body(stmt.body, iteration, out) == Flow::Break) break;
    }
  }

  void assign(const Target& target, const Value& value, const ScopePtr& scope) {
    switch (target.kind) {
      case Target::Kind::Name: scope->variables[target.name] = value; return;
      case Target::Kind::NamespaceAttribute: {
        const Value* ns = scope->find(target.name);
        if (!ns && !variables_.find(target.name)) fail("'" + target.name + "' is undefined");
        const Value& holder = ns ? *ns : *variables_.find(target.name);
        auto* object = holder.is_object() ? dynamic_cast<NamespaceObject*>(&holder.object()) : nullptr;
        if (!object) fail("cannot assign attribute on non-namespace object");
        object->set(target.attribute, value);
        return;
      }
      case Target::Kind::Tuple: {
        const std::vector<Value> parts = iterate(value);
        const size_t expected = target.items.size();
        if (parts.size() > expected) fail("too many values to unpack (expected " + std::to_string(expected) + ")");
        if (parts.size() < expected)
          fail("not enough values to unpack (expected " + std::to_string(expected) + ", got " +
               std::to_string(parts.size()) + ")");
        for (size_t i = 0; i < expected; ++i) assign(target.items[i], parts[i], scope);
        return;
      }
    }
  }

  // ---- expressions ----
  Value lookup(const std::string& name, const ScopePtr& scope) const {
    if (const Value* value = scope->find(name)) return *value;
    if (const Value* value = variables_.find(name)) return *value;
    return global_value(name);
  }

  Value eval(const Expr& e, const ScopePtr& scope) {
    Frame frame(*this, e.line);
    switch (e.kind) {
      case Expr::Kind::Literal: return e.value;
      case Expr::Kind::Name: return lookup(e.name, scope);
      case Expr::Kind::List:
      case Expr::Kind::Tuple: {
        std::vector<Value> items;
        for (const ExprPtr& item : e.items) items.push_back(eval(*item, scope));
        return Value::list(std::move(items), e.kind == Expr::Kind::Tuple ? Value::Sequence::Tuple : Value::Sequence::List);
      }
      case Expr::Kind::Dict: {
        DictData dict;
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) dict.set(eval(*e.items[i], scope), eval(*e.items[i + 1], scope));
        return Value::dict(std::move(dict));
      }
      case Expr::Kind::Getattr: return get_attribute(*this, eval(*e.object, scope), e.name);
      case Expr::Kind::Getitem: {
        const Value object = eval(*e.object, scope);
        return get_item(*this, object, eval(*e.items[0], scope));
      }
      case Expr::Kind::Slice: return eval_slice(e, scope);
      case Expr::Kind::Call: {
        const Value callee = eval(*e.object, scope);
        CallArgs args = eval_arguments(e.arguments, scope);
        return call(callee, args);
      }
      case Expr::Kind::Filter: return eval_filters(e, scope, Value());
      case Expr::Kind::Test: {
        const Value value = eval(*e.object, scope);
        CallArgs args = eval_arguments(e.arguments, scope);
        return Value::boolean(test(e.name, value, args));
      }
      case Expr::Kind::Not: return Value::boolean(!eval(*e.object, scope).truthy());
      case Expr::Kind::Negate: return negate(eval(*e.object, scope), true);
      case Expr::Kind::Plus: return negate(eval(*e.object, scope), false);
      case Expr::Kind::Binary: return eval_binary(e, scope);
      case Expr::Kind::Concat: {
        std::string text;
        for (const ExprPtr& item : e.items) {
          text += eval(*item, scope).str();
          if (text.size() > options_.max_output_bytes) fail("string too long");
        }
        charge(text.size() / 64);
        return Value::string(std::move(text));
      }
      case Expr::Kind::Compare: return Value::boolean(eval_compare(e, scope));
      case Expr::Kind::Condition:
        if (eval(*e.object, scope).truthy()) return eval(*e.items[0], scope);
        if (e.items[1]) return eval(*e.items[1], scope);
        return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
    }
    return Value();
  }

  Value eval_slice(const Expr& e, const ScopePtr& scope) {
    const Value object = eval(*e.object, scope);
    std::optional<Value> bounds[3];
    for (size_t i = 0; i < 3; ++i)
      if (e.items[i]) bounds[i] = eval(*e.items[i], scope);
    return get_slice(object, bounds[0], bounds[1], bounds[2]);
  }

  // A filter chain; the innermost filter of a `set` or `filter` block has no object and takes `block_input`.
  Value eval_filters(const Expr& e, const ScopePtr& scope, const Value& block_input) {
    if (e.kind != Expr::Kind::Filter) return eval(e, scope);
    Frame frame(*this, e.line);
    const Value value = e.object ? eval_filters(*e.object, scope, block_input) : block_input;
    CallArgs args = eval_arguments(e.arguments, scope);
    line_ = e.line;
    return filter(e.name, value, args);
  }

  CallArgs eval_arguments(const Arguments& arguments, const ScopePtr& scope) {
    CallArgs args;
    for (const ExprPtr& arg : arguments.positional) args.positional.push_back(eval(*arg, scope));
    for (const Keyword& keyword : arguments.keywords) args.keywords.emplace_back(keyword.name, eval(*keyword.value, scope));
    if (arguments.star)
      for (Value& item : iterate(eval(*arguments.star, scope))) args.positional.push_back(std::move(item));
    if (arguments.star_star) {
      const Value mapping = eval(*arguments.star_star, scope);
      if (!mapping.is_dict()) fail("argument after ** must be a mapping, not " + mapping.type_name());
      for (const auto& [key, value] : mapping.entries().items) {
        if (!key.is_string()) fail("keywords must be strings");
        args.keywords.emplace_back(key.text(), value);
      }
    }
    return args;
  }

  Value eval_binary(const Expr& e, const ScopePtr& scope) {
    const Value left = eval(*e.object, scope);
    if (e.name == "and") return left.truthy() ? eval(*e.items[0], scope) : left;
    if (e.name == "or") return left.truthy() ? left : eval(*e.items[0], scope);
    const Value right = eval(*e.items[0], scope);
    line_ = e.line;
    return binary_operator(*this, e.name, left, right);
  }

  bool eval_compare(const Expr& e, const ScopePtr& scope) {
    Value left = eval(*e.object, scope);
    for (size_t i = 0; i < e.operators.size(); ++i) {
      Value right = eval(*e.items[i], scope);
      line_ = e.line;
      if (!compare(e.operators[i], left, right)) return false;
      left = std::move(right);
    }
    return true;
  }

  static bool compare(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return equals(a, b);
    if (op == "!=") return !equals(a, b);
    if (op == "<") return less(a, b);
    if (op == ">") return less(b, a);
    if (op == "<=") return less(a, b) || equals(a, b);
    if (op == ">=") return less(b, a) || equals(a, b);
    if (op == "in") return contains(b, a);
    return !contains(b, a);  // notin
  }

  const DictData& variables_;
  const RenderOptions& options_;
  std::vector<std::shared_ptr<Object>> tracked_;
  uint64_t work_ = 0;
  int depth_ = 0;
  int line_ = 0;
};

// jinja2's Macro.__call__: positional arguments first, then keywords for the parameters left; missing parameters
// take their defaults (evaluated in the call's scope) or stay undefined; extras go to varargs / kwargs when the
// body reads them and are an error otherwise.
Value Interpreter::invoke_macro(const Stmt& definition, const ScopePtr& closure, CallArgs& args) {
  if (!closure) fail("macro '" + definition.name + "' called after its template finished");
  const std::vector<MacroParameter>& parameters = definition.parameters;
  ScopePtr scope = inner(closure);
  std::vector<std::pair<std::string, Value>> keywords = args.keywords;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const std::string& name = parameters[i].name;
    std::optional<Value> value;
    if (i < args.positional.size()) {
      value = args.positional[i];
    } else {
      for (auto it = keywords.begin(); it != keywords.end(); ++it)
        if (it->first == name) {
          value = it->second;
          keywords.erase(it);
          break;
        }
    }
    if (!value)
      value = parameters[i].default_value ? eval(*parameters[i].default_value, scope)
                                          : Value::undefined("parameter '" + name + "' was not provided");
    scope->variables[name] = *value;
  }
  if (definition.uses_kwargs) {
    DictData extra;
    for (const auto& [name, value] : keywords) extra.set(Value::string(name), value);
    scope->variables["kwargs"] = Value::dict(std::move(extra));
  } else if (!keywords.empty()) {
    fail("macro '" + definition.name + "' takes no keyword argument '" + keywords.front().first + "'");
  }
  if (definition.uses_varargs) {
    std::vector<Value> extra;
    for (size_t i = parameters.size(); i < args.positional.size(); ++i) extra.push_back(args.positional[i]);
    scope->variables["varargs"] = Value::list(std::move(extra), Value::Sequence::Tuple);
  } else if (args.positional.size() > parameters.size()) {
    fail("macro '" + definition.name + "' takes not more than " + std::to_string(parameters.size()) + " argument(s)");
  }
  std::string out;
  exec_body(definition.body, scope, out);
  return Value::string(std::move(out));
}

Value MacroObject::call(Runtime&, CallArgs& args) { return interpreter_.invoke_macro(definition_, scope_, args); }

}  // namespace

std::string render(const Body& body, const DictData& variables, const RenderOptions& options) {
  return Interpreter(variables, options).run(body);
}

}  // namespace qwen3vl::jinja
