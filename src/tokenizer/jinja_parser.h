// The parser of the chat-template interpreter (jinja_template.h): jinja2's parser.py grammar and precedence for the
// subset Hugging Face chat templates use. Throws SyntaxError (jinja_lexer.h) with the line for malformed templates
// and for constructs the interpreter does not run: template inheritance and inclusion (extends, block, include,
// import, from), call blocks, autoescape, recursive loops, and filters it does not know.
#pragma once

#include <string>

#include "tokenizer/jinja_ast.h"

namespace qwen3vl::jinja {

// Parses template text (valid UTF-8) into statements.
Body parse_template(const std::string& text);

}  // namespace qwen3vl::jinja
