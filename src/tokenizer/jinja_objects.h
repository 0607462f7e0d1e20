// The object types of the chat-template interpreter (jinja_value.h's Object): built-in functions and bound methods,
// namespaces, iterators (generators) and dict views.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace qwen3vl::jinja {

// A built-in function, or a method bound to the value it was read from (`"a,b".split`).
class BuiltinFunction : public Object {
 public:
  using Body = std::function<Value(Runtime&, CallArgs&)>;
  BuiltinFunction(std::string name, Body body, std::string owner = {})
      : name_(std::move(name)), body_(std::move(body)), owner_(std::move(owner)) {}

  std::string type_name() const override { return owner_.empty() ? "builtin_function_or_method" : "method"; }
  std::string repr() const override {
    return owner_.empty() ? "<built-in function " + name_ + ">"
                          : "<built-in method " + name_ + " of " + owner_ + " object>";
  }
  bool callable() const override { return true; }
  Value call(Runtime& runtime, CallArgs& args) override { return body_(runtime, args); }

 private:
  std::string name_;
  Body body_;
  std::string owner_;
};

inline Value make_function(std::string name, BuiltinFunction::Body body, std::string owner = {}) {
  return Value::object(std::make_shared<BuiltinFunction>(std::move(name), std::move(body), std::move(owner)));
}

// jinja2's Namespace (transformers' TemplateNamespace): attributes set with `{% set ns.attr = value %}`.
class NamespaceObject : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::string repr() const override { return "<Namespace " + Value::dict(attributes_).repr() + ">"; }
  Value attribute(const std::string& name) override {
    const Value* value = attributes_.find(name);
    return value ? *value : Object::attribute(name);
  }
  // transformers refuses underscore-prefixed names (TemplateNamespace._check_name).
  void set(const std::string& name, Value value) {
    if (!name.empty() && name[0] == '_')
      throw TemplateError("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
                          name + "'. Please rename the attribute.");
    attributes_.set(Value::string(name), std::move(value));
  }
  void release() override { attributes_ = DictData(); }

 private:
  DictData attributes_;
};

// A one-pass iterator: a generator (what select, map, unique... return) or a reversed sequence.
class IteratorObject : public Object {
 public:
  IteratorObject(std::vector<Value> items, std::string type_name)
      : items_(std::move(items)), type_name_(std::move(type_name)) {}
  std::string type_name() const override { return type_name_; }
  std::string repr() const override { return "<" + type_name_ + " object>"; }
  bool iterable() const override { return true; }
  std::vector<Value> iterate() override {
    std::vector<Value> rest(items_.begin() + static_cast<std::ptrdiff_t>(next_), items_.end());
    next_ = items_.size();
    return rest;
  }
  // Takes one item (next(it)); false when exhausted.
  bool take(Value& item) {
    if (next_ >= items_.size()) return false;
    item = items_[next_++];
    return true;
  }

 private:
  std::vector<Value> items_;
  size_t next_ = 0;
  std::string type_name_;
};

// dict.items() / keys() / values(): iterable any number of times, sized, not subscriptable.
class DictViewObject : public Object {
 public:
  DictViewObject(std::vector<Value> items, std::string type_name)
      : items_(std::move(items)), type_name_(std::move(type_name)) {}
  std::string type_name() const override { return type_name_; }
  std::string repr() const override { return type_name_ + "(" + Value::list(items_).repr() + ")"; }
  bool iterable() const override { return true; }
  std::vector<Value> iterate() override { return items_; }
  std::optional<int64_t> size() const override { return static_cast<int64_t>(items_.size()); }

 private:
  std::vector<Value> items_;
  std::string type_name_;
};

}  // namespace qwen3vl::jinja
