// The syntax tree of a parsed chat template (jinja_parser.h builds it, jinja_render.h runs it). Node kinds follow
// jinja2's nodes.py where the subset needs them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace qwen3vl::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Keyword {
  std::string name;
  ExprPtr value;
};

// Arguments of a call, a filter or a test: `f(a, b, key=c, *rest, **more)`.
struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<Keyword> keywords;
  ExprPtr star;       // *args
  ExprPtr star_star;  // **kwargs
};

struct Expr {
  enum class Kind {
    Literal,    // value
    Name,       // name
    List,       // items (a list literal)
    Tuple,      // items
    Dict,       // items as key, value pairs: items[2i], items[2i+1]
    Getattr,    // object.name
    Getitem,    // object[index]
    Slice,      // object[start:stop:step] (items: start, stop, step, each may be null)
    Call,       // object(arguments)
    Filter,     // object | name(arguments); object is null for a filter block
    Test,       // object is name(arguments)
    Not,        // not object
    Negate,     // -object
    Plus,       // +object
    Binary,     // object op items[0]: + - * / // % ** and or
    Concat,     // items joined with ~
    Compare,    // object then (operators[i], items[i])...
    Condition,  // items[1] if object else items[2] (items[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;  // Name, Getattr attribute, Filter / Test name, Binary operator
  ExprPtr object;
  std::vector<ExprPtr> items;
  std::vector<std::string> operators;  // Compare: "==", "!=", "<", "<=", ">", ">=", "in", "notin"
  Arguments arguments;
  int depth = 1;  // of the tree below this node; the parser bounds it so evaluation cannot overflow the stack

  Expr(Kind kind_, int line_) : kind(kind_), line(line_) {}
};

// The left side of `set`, `for` and `with`: a name, a namespace attribute (`ns.attr`) or a tuple of targets.
struct Target {
  enum class Kind { Name, NamespaceAttribute, Tuple };
  Kind kind = Kind::Name;
  std::string name;
  std::string attribute;
  std::vector<Target> items;
};

struct MacroParameter {
  std::string name;
  ExprPtr default_value;  // null: none
};

struct Stmt {
  enum class Kind {
    Text,        // text
    Print,       // expr
    If,          // conditions[i] -> bodies[i]; else_body
    For,         // for target in expr [if condition] body [else else_body]
    Set,         // target = expr
    SetBlock,    // target = rendered body, through filter (may be null)
    Macro,       // name(parameters) body
    FilterBlock, // filter applied to the rendered body
    With,        // targets = values, body
    Break,
    Continue,
    Generation,  // transformers' {% generation %}: renders its body
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  Target target;
  std::vector<Target> targets;
  std::vector<ExprPtr> values;
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  Body body;
  Body else_body;
  std::string name;
  std::vector<MacroParameter> parameters;
  bool uses_varargs = false;  // the macro body reads `varargs` / `kwargs`
  bool uses_kwargs = false;

  Stmt(Kind kind_, int line_) : kind(kind_), line(line_) {}
};

}  // namespace qwen3vl::jinja
