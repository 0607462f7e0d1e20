#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_lexer.h"

namespace qwen3vl::jinja {

namespace {

// Nesting limits: parenthesised / bracketed expressions and unary chains, and nested block tags. jinja2 (recursive
// Python) stops at its interpreter's recursion limit; these keep the native stack small.
constexpr int kMaxExpressionDepth = 100;
constexpr int kMaxBlockDepth = 100;
constexpr int kMaxTreeDepth = 200;

using Type = Token::Type;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse() { return subparse({}); }

 private:
  // ---- token stream ----
  const Token& current() const { return tokens_[pos_]; }
  const Token& look() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& token = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return token;
  }
  bool is_op(const char* op) const { return current().type == Type::Operator && current().text == op; }
  bool is_name(const char* name) const { return current().type == Type::Name && current().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& message) const { throw SyntaxError(current().line, message); }
  [[noreturn]] void fail_at(int line, const std::string& message) const { throw SyntaxError(line, message); }

  static std::string describe(const Token& token) {
    switch (token.type) {
      case Type::Eof: return "end of template";
      case Type::BlockEnd: return "end of statement block";
      case Type::VariableEnd: return "end of print statement";
      case Type::Data: return "template data";
      case Type::String: return "string";
      case Type::Integer: return "integer";
      case Type::Float: return "float";
      default: return token.text;
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected token '") + op + "', got '" + describe(current()) + "'");
  }
  void expect(Type type, const char* what) {
    if (current().type != type) fail(std::string("expected token '") + what + "', got '" + describe(current()) + "'");
    next();
  }
  std::string expect_name() {
    if (current().type != Type::Name) fail("expected token 'name', got '" + describe(current()) + "'");
    return next().text;
  }

  // ---- statements ----
  struct EndTags {
    std::vector<std::string> names;
    std::string block;  // the tag being closed, for messages
  };

  bool at_end_tag(const EndTags& end) const {
    return current().type == Type::Name && std::find(end.names.begin(), end.names.end(), current().text) != end.names.end();
  }

  std::string looking_for(const EndTags& end) const {
    std::string out;
    for (size_t i = 0; i < end.names.size(); ++i) out += (i ? " or '" : "'") + end.names[i] + "'";
    return out;
  }

  // Statements and text until one of `end`'s tags (left as the current token) or the end of the template.
  Body subparse(const EndTags& end) {
    Body body;
    while (current().type != Type::Eof) {
      const Token& token = current();
      if (token.type == Type::Data) {
        auto text = std::make_unique<Stmt>(Stmt::Kind::Text, token.line);
        text->text = token.text;
        body.push_back(std::move(text));
        next();
      } else if (token.type == Type::VariableBegin) {
        next();
        auto print = std::make_unique<Stmt>(Stmt::Kind::Print, token.line);
        print->expr = parse_tuple(TupleMode::Full);
        expect(Type::VariableEnd, "end of print statement");
        body.push_back(std::move(print));
      } else {
        next();  // block begin
        if (!end.names.empty() && at_end_tag(end)) return body;
        body.push_back(parse_statement(end));
        expect(Type::BlockEnd, "end of statement block");
      }
    }
    if (!end.names.empty())
      fail("Unexpected end of template. Jinja was looking for the following tags: " + looking_for(end) +
           ". The innermost block that needs to be closed is '" + end.block + "'.");
    return body;
  }

  // The body of a block tag up to one of `end_names`: checks the block's own tag end first.
  Body parse_block_body(const std::string& block, std::vector<std::string> end_names) {
    expect(Type::BlockEnd, "end of statement block");
    if (++block_depth_ > kMaxBlockDepth) fail("block tags are nested too deeply");
    Body body = subparse({std::move(end_names), block});
    --block_depth_;
    return body;
  }

  StmtPtr parse_statement(const EndTags& enclosing) {
    if (current().type != Type::Name) fail("tag name expected");
    const std::string tag = current().text;
    const int line = current().line;
    if (tag == "for") return parse_for();
    if (tag == "if") return parse_if();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "with") return parse_with();
    if (tag == "filter") return parse_filter_block();
    if (tag == "generation") return parse_generation();
    if (tag == "print") {
      next();
      auto print = std::make_unique<Stmt>(Stmt::Kind::Print, line);
      print->expr = parse_expression();
      return print;
    }
    if (tag == "break" || tag == "continue") {
      next();
      if (loop_depth_ == 0) fail_at(line, "'" + tag + "' outside loop");
      return std::make_unique<Stmt>(tag == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, line);
    }
    static const char* const kUnsupported[] = {"block", "extends", "include", "import", "from", "call", "autoescape"};
    for (const char* name : kUnsupported)
      if (tag == name) fail("the '" + tag + "' tag is not supported in chat templates");
    std::string message = "Encountered unknown tag '" + tag + "'.";
    if (!enclosing.names.empty())
      message += " Jinja was looking for the following tags: " + looking_for(enclosing) +
                 ". The innermost block that needs to be closed is '" + enclosing.block + "'.";
    fail(message);
  }

  StmtPtr parse_for() {
    auto stmt = std::make_unique<Stmt>(Stmt::Kind::For, next().line);
    stmt->target = parse_assign_target(false, true);
    if (!skip_name("in")) fail("expected token 'in', got '" + describe(current()) + "'");
    stmt->expr = parse_tuple(TupleMode::NoCondition, "recursive");
    if (skip_name("if")) stmt->condition = parse_expression();
    if (is_name("recursive")) fail("recursive loops are not supported in chat templates");
    ++loop_depth_;
    stmt->body = parse_block_body("for", {"endfor", "else"});
    --loop_depth_;
    if (next().text == "else") {
      stmt->else_body = parse_block_body("for", {"endfor"});
      next();  // endfor
    }
    return stmt;
  }

  StmtPtr parse_if() {
    auto stmt = std::make_unique<Stmt>(Stmt::Kind::If, next().line);
    while (true) {
      stmt->conditions.push_back(parse_tuple(TupleMode::NoCondition));
      stmt->bodies.push_back(parse_block_body("if", {"elif", "else", "endif"}));
      const std::string tag = next().text;
      if (tag == "elif") continue;
      if (tag == "else") {
        stmt->else_body = parse_block_body("if", {"endif"});
        next();
      }
      return stmt;
    }
  }

  StmtPtr parse_set() {
    const int line = next().line;
    Target target = parse_assign_target(true, true);
    if (skip_op("=")) {
      auto stmt = std::make_unique<Stmt>(Stmt::Kind::Set, line);
      stmt->target = std::move(target);
      stmt->expr = parse_tuple(TupleMode::Full);
      return stmt;
    }
    auto stmt = std::make_unique<Stmt>(Stmt::Kind::SetBlock, line);
    stmt->target = std::move(target);
    if (is_op("|")) stmt->expr = parse_filters(nullptr, false);
    stmt->body = parse_block_body("set", {"endset"});
    next();
    return stmt;
  }

  StmtPtr parse_macro() {
    auto stmt = std::make_unique<Stmt>(Stmt::Kind::Macro, next().line);
    stmt->name = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!stmt->parameters.empty()) expect_op(",");
      MacroParameter parameter;
      parameter.name = expect_name();
      if (skip_op("=")) {
        parameter.default_value = parse_expression();
      } else if (!stmt->parameters.empty() && stmt->parameters.back().default_value) {
        fail("non-default argument follows default argument");
      }
      stmt->parameters.push_back(std::move(parameter));
    }
    expect_op(")");
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;  // a macro body is not inside the loop it is defined in
    stmt->body = parse_block_body("macro", {"endmacro"});
    loop_depth_ = saved_loops;
    next();
    stmt->uses_varargs = body_reads(stmt->body, "varargs");
    stmt->uses_kwargs = body_reads(stmt->body, "kwargs");
    return stmt;
  }

  StmtPtr parse_with() {
    auto stmt = std::make_unique<Stmt>(Stmt::Kind::With, next().line);
    while (current().type != Type::BlockEnd) {
      if (!stmt->targets.empty()) expect_op(",");
      stmt->targets.push_back(parse_assign_target(false, true));
      expect_op("=");
      stmt->values.push_back(parse_expression());
    }
    stmt->body = parse_block_body("with", {"endwith"});
    next();
    return stmt;
  }

  StmtPtr parse_filter_block() {
    auto stmt = std::make_unique<Stmt>(Stmt::Kind::FilterBlock, next().line);
    stmt->expr = parse_filters(nullptr, true);
    stmt->body = parse_block_body("filter", {"endfilter"});
    next();
    return stmt;
  }

  StmtPtr parse_generation() {
    auto stmt = std::make_unique<Stmt>(Stmt::Kind::Generation, next().line);
    stmt->body = parse_block_body("generation", {"endgeneration"});
    next();
    return stmt;
  }

  // jinja2's parse_assign_target: names, `ns.attr` (set only) and tuples of them.
  Target parse_assign_target(bool with_namespace, bool with_tuple) {
    const int line = current().line;
    Target target;
    target.kind = Target::Kind::Tuple;
    bool is_tuple = false;
    while (true) {
      if (!target.items.empty()) expect_op(",");
      if (current().type == Type::BlockEnd || is_name("in") || is_op("=") || is_op("|") || is_op(")")) break;
      target.items.push_back(parse_target_item(with_namespace));
      if (!with_tuple || !is_op(",")) break;
      is_tuple = true;
    }
    if (target.items.empty()) fail_at(line, "can't assign to 'tuple'");
    if (!is_tuple) return std::move(target.items.front());
    return target;
  }

  Target parse_target_item(bool with_namespace) {
    Target target;
    if (skip_op("(")) {
      target = parse_assign_target(with_namespace, true);
      expect_op(")");
      return target;
    }
    if (current().type != Type::Name) fail("can't assign to '" + describe(current()) + "'");
    const std::string name = next().text;
    if (name == "true" || name == "false" || name == "True" || name == "False" || name == "none" || name == "None")
      fail("can't assign to 'const'");
    target.name = name;
    if (with_namespace && skip_op(".")) {
      target.kind = Target::Kind::NamespaceAttribute;
      target.attribute = expect_name();
    }
    return target;
  }

  // Whether the macro body reads `name` (jinja2 gives a macro its varargs / kwargs only then).
  static bool body_reads(const Body& body, const char* name) {
    for (const StmtPtr& stmt : body)
      if (stmt_reads(*stmt, name)) return true;
    return false;
  }
  static bool stmt_reads(const Stmt& stmt, const char* name) {
    if (stmt.kind == Stmt::Kind::Macro) return false;  // a nested macro has its own
    if (expr_reads(stmt.expr.get(), name) || expr_reads(stmt.condition.get(), name)) return true;
    for (const ExprPtr& e : stmt.values)
      if (expr_reads(e.get(), name)) return true;
    for (const ExprPtr& e : stmt.conditions)
      if (expr_reads(e.get(), name)) return true;
    for (const Body& b : stmt.bodies)
      if (body_reads(b, name)) return true;
    return body_reads(stmt.body, name) || body_reads(stmt.else_body, name);
  }
  static bool expr_reads(const Expr* e, const char* name) {
    if (!e) return false;
    if (e->kind == Expr::Kind::Name && e->name == name) return true;
    if (expr_reads(e->object.get(), name)) return true;
    for (const ExprPtr& item : e->items)
      if (expr_reads(item.get(), name)) return true;
    for (const ExprPtr& item : e->arguments.positional)
      if (expr_reads(item.get(), name)) return true;
    for (const Keyword& keyword : e->arguments.keywords)
      if (expr_reads(keyword.value.get(), name)) return true;
    return expr_reads(e->arguments.star.get(), name) || expr_reads(e->arguments.star_star.get(), name);
  }

  // ---- expressions ----
  enum class TupleMode { Full, NoCondition };

  // A depth guard for the recursive descent.
  struct Nesting {
    explicit Nesting(Parser& parser) : parser_(parser) {
      if (++parser_.expression_depth_ > kMaxExpressionDepth) parser_.fail("expression is nested too deeply");
    }
    ~Nesting() { --parser_.expression_depth_; }
    Parser& parser_;
  };

  ExprPtr make(Expr::Kind kind, int line) { return std::make_unique<Expr>(kind, line); }

  // Records the depth of a node whose children are attached; long chains (a + b + c ..., x|f|f ...) nest the
  // tree without nesting the parse, so this bounds them too.
  ExprPtr done(ExprPtr node) {
    int deepest = 0;
    auto visit = [&deepest](const ExprPtr& child) {
      if (child) deepest = std::max(deepest, child->depth);
    };
    visit(node->object);
    for (const ExprPtr& item : node->items) visit(item);
    for (const ExprPtr& item : node->arguments.positional) visit(item);
    for (const Keyword& keyword : node->arguments.keywords) visit(keyword.value);
    visit(node->arguments.star);
    visit(node->arguments.star_star);
    node->depth = deepest + 1;
    if (node->depth > kMaxTreeDepth) fail_at(node->line, "expression is nested too deeply");
    return node;
  }

  bool is_tuple_end(const char* extra_end) const {
    const Type type = current().type;
    if (type == Type::VariableEnd || type == Type::BlockEnd || type == Type::Eof || is_op(")")) return true;
    return extra_end && is_name(extra_end);
  }

  // jinja2's parse_tuple: expressions separated by commas make a tuple.
  ExprPtr parse_tuple(TupleMode mode, const char* extra_end = nullptr, bool explicit_parentheses = false) {
    const int line = current().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(mode == TupleMode::Full ? parse_expression() : parse_or());
      if (!is_op(",")) break;
      is_tuple = true;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items.front());
      if (!explicit_parentheses) fail("Expected an expression, got '" + describe(current()) + "'");
    }
    auto tuple = make(Expr::Kind::Tuple, line);
    tuple->items = std::move(items);
    return done(std::move(tuple));
  }

  ExprPtr parse_expression() {
    Nesting nesting(*this);
    return parse_condition();
  }

  ExprPtr parse_condition() {
    const int line = current().line;
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      auto condition = make(Expr::Kind::Condition, line);
      condition->object = parse_or();
      condition->items.push_back(std::move(expr));
      condition->items.push_back(skip_name("else") ? parse_condition() : nullptr);
      expr = done(std::move(condition));
    }
    return expr;
  }

  ExprPtr binary(const char* op, ExprPtr left, ExprPtr right, int line) {
    auto node = make(Expr::Kind::Binary, line);
    node->name = op;
    node->object = std::move(left);
    node->items.push_back(std::move(right));
    return done(std::move(node));
  }

  ExprPtr parse_or() {
    const int line = current().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) left = binary("or", std::move(left), parse_and(), line);
    return left;
  }

  ExprPtr parse_and() {
    const int line = current().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) left = binary("and", std::move(left), parse_not(), line);
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Nesting nesting(*this);
      auto node = make(Expr::Kind::Not, next().line);
      node->object = parse_not();
      return done(std::move(node));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = current().line;
    ExprPtr expr = parse_math1();
    auto compare = make(Expr::Kind::Compare, line);
    while (true) {
      static const char* const kOperators[] = {"==", "!=", "<", "<=", ">", ">="};
      const char* op = nullptr;
      for (const char* candidate : kOperators)
        if (is_op(candidate)) op = candidate;
      if (op) {
        next();
        compare->operators.push_back(op);
      } else if (skip_name("in")) {
        compare->operators.push_back("in");
      } else if (is_name("not") && look().type == Type::Name && look().text == "in") {
        next();
        next();
        compare->operators.push_back("notin");
      } else {
        break;
      }
      compare->items.push_back(parse_math1());
    }
    if (compare->operators.empty()) return expr;
    compare->object = std::move(expr);
    return done(std::move(compare));
  }

  ExprPtr parse_math1() {
    const int line = current().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const char* op = next().text == "+" ? "+" : "-";
      left = binary(op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const int line = current().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto concat = make(Expr::Kind::Concat, line);
    concat->items.push_back(std::move(first));
    while (skip_op("~")) concat->items.push_back(parse_math2());
    return done(std::move(concat));
  }

  ExprPtr parse_math2() {
    const int line = current().line;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = next().text;
      left = binary(op == "*" ? "*" : op == "/" ? "/" : op == "//" ? "//" : "%", std::move(left), parse_pow(), line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    const int line = current().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) left = binary("**", std::move(left), parse_unary(true), line);
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    const int line = current().line;
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      Nesting nesting(*this);
      node = make(next().text == "-" ? Expr::Kind::Negate : Expr::Kind::Plus, line);
      node->object = parse_unary(false);
      node = done(std::move(node));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr literal(Value value, int line) {
    auto node = make(Expr::Kind::Literal, line);
    node->value = std::move(value);
    return node;
  }

  ExprPtr parse_primary() {
    const Token& token = current();
    const int line = token.line;
    switch (token.type) {
      case Type::Name: {
        const std::string name = next().text;
        if (name == "true" || name == "True") return literal(Value::boolean(true), line);
        if (name == "false" || name == "False") return literal(Value::boolean(false), line);
        if (name == "none" || name == "None") return literal(Value::none(), line);
        auto node = make(Expr::Kind::Name, line);
        node->name = name;
        return node;
      }
      case Type::String: {
        std::string text;
        while (current().type == Type::String) text += next().text;  // adjacent literals concatenate
        return literal(Value::string(std::move(text)), line);
      }
      case Type::Integer: return literal(Value::integer(next().integer), line);
      case Type::Float: return literal(Value::number(next().number), line);
      default: break;
    }
    if (is_op("(") || is_op("[") || is_op("{")) {
      Nesting nesting(*this);
      if (skip_op("(")) {
        ExprPtr inner = parse_tuple(TupleMode::Full, nullptr, true);
        expect_op(")");
        return inner;
      }
      return is_op("[") ? parse_list() : parse_dict();
    }
    fail("unexpected '" + describe(token) + "'");
  }

  ExprPtr parse_list() {
    auto node = make(Expr::Kind::List, next().line);
    while (!is_op("]")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op("]")) break;
      node->items.push_back(parse_expression());
    }
    expect_op("]");
    return done(std::move(node));
  }

  ExprPtr parse_dict() {
    auto node = make(Expr::Kind::Dict, next().line);
    while (!is_op("}")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op("}")) break;
      node->items.push_back(parse_expression());
      expect_op(":");
      node->items.push_back(parse_expression());
    }
    expect_op("}");
    return done(std::move(node));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filters(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    Nesting nesting(*this);
    const Token& token = next();
    const int line = token.line;
    if (token.text == ".") {
      if (current().type == Type::Name) {
        auto attr = make(Expr::Kind::Getattr, line);
        attr->object = std::move(node);
        attr->name = next().text;
        return done(std::move(attr));
      }
      if (current().type != Type::Integer) fail("expected name or number");
      auto item = make(Expr::Kind::Getitem, line);
      item->object = std::move(node);
      item->items.push_back(literal(Value::integer(next().integer), line));
      return done(std::move(item));
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    if (args.size() == 1 && args.front()->kind == Expr::Kind::Slice) {
      args.front()->object = std::move(node);
      return done(std::move(args.front()));
    }
    auto item = make(Expr::Kind::Getitem, line);
    item->object = std::move(node);
    if (args.size() == 1) {
      item->items.push_back(std::move(args.front()));
    } else {
      for (const ExprPtr& arg : args)
        if (arg->kind == Expr::Kind::Slice) fail_at(line, "multiple slices in a subscript are not supported");
      auto tuple = make(Expr::Kind::Tuple, line);
      tuple->items = std::move(args);
      item->items.push_back(done(std::move(tuple)));
    }
    return done(std::move(item));
  }

  // An index or a slice `start:stop:step` (a Slice node whose object the caller fills).
  ExprPtr parse_subscribed() {
    const int line = current().line;
    ExprPtr start;
    if (!is_op(":")) {
      start = parse_expression();
      if (!is_op(":")) return start;
    }
    next();  // ':'
    auto slice = make(Expr::Kind::Slice, line);
    slice->items.push_back(std::move(start));
    slice->items.push_back(is_op(":") || is_op("]") || is_op(",") ? nullptr : parse_expression());
    ExprPtr step;
    if (skip_op(":") && !is_op("]") && !is_op(",")) step = parse_expression();
    slice->items.push_back(std::move(step));
    return slice;  // done() once the caller attaches the sliced object
  }

  Arguments parse_call_args() {
    const int line = current().line;
    expect_op("(");
    Arguments args;
    auto ensure = [&](bool ok) {
      if (!ok) fail_at(line, "invalid syntax for function call expression");
    };
    bool require_comma = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (skip_op("*")) {
        ensure(!args.star && !args.star_star);
        args.star = parse_expression();
      } else if (skip_op("**")) {
        ensure(!args.star_star);
        args.star_star = parse_expression();
      } else if (current().type == Type::Name && look().type == Type::Operator && look().text == "=") {
        ensure(!args.star_star);
        Keyword keyword;
        keyword.name = next().text;
        next();
        keyword.value = parse_expression();
        args.keywords.push_back(std::move(keyword));
      } else {
        ensure(!args.star && !args.star_star && args.keywords.empty());
        args.positional.push_back(parse_expression());
      }
      require_comma = true;
    }
    expect_op(")");
    return args;
  }

  ExprPtr parse_call(ExprPtr node) {
    Nesting nesting(*this);
    auto call = make(Expr::Kind::Call, current().line);
    call->object = std::move(node);
    call->arguments = parse_call_args();
    return done(std::move(call));
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  // `| name(args) | name ...`; with `start_inline` the first filter has no pipe (a filter block).
  ExprPtr parse_filters(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      const int line = current().line;
      auto filter = make(Expr::Kind::Filter, line);
      filter->name = dotted_name();
      if (!has_filter(filter->name)) fail_at(line, "No filter named '" + filter->name + "'.");
      if (is_op("(")) {
        Nesting nesting(*this);
        filter->arguments = parse_call_args();
      }
      filter->object = std::move(node);
      node = done(std::move(filter));
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const int line = next().line;  // 'is'
    const bool negated = skip_name("not");
    auto test = make(Expr::Kind::Test, line);
    test->name = dotted_name();
    test->object = std::move(node);
    const Type type = current().type;
    if (is_op("(")) {
      Nesting nesting(*this);
      test->arguments = parse_call_args();
    } else if ((type == Type::Name || type == Type::String || type == Type::Integer || type == Type::Float ||
                is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      test->arguments.positional.push_back(parse_postfix(parse_primary()));
    }
    test = done(std::move(test));
    if (!negated) return test;
    auto negation = make(Expr::Kind::Not, line);
    negation->object = std::move(test);
    return done(std::move(negation));
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
  int block_depth_ = 0;
  int expression_depth_ = 0;
};

}  // namespace

Body parse_template(const std::string& text) { return Parser(tokenize(text)).parse(); }

}  // namespace qwen3vl::jinja
