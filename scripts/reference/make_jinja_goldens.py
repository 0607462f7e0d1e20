#!/usr/bin/env python3
"""Render the feature cases of the chat-template interpreter (tests/unit/test_jinja_*.cpp) with jinja2 itself.

Every case is a small template and, optionally, its variables (JSON). Each is compiled exactly as transformers
compiles chat templates (transformers.utils.chat_template_utils._compile_jinja_template: ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, the generation tag, transformers' tojson / raise_exception / namespace /
dict) and rendered. The output is tests/fixtures/jinja/cases.json: per case its group (the test file that runs it),
name, template, variables and either the rendered text or the error jinja2 raised: its type, message and the
template line it names (from the exception for syntax errors, from the traceback jinja2 rewrites for runtime
errors).

Usage: $VENV/bin/python scripts/reference/make_jinja_goldens.py [--check]
  --check  compare with the committed cases.json instead of writing it (exit 1 on a difference)
"""
import argparse
import json
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "jinja" / "cases.json"

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi 'there'"},
    {"role": "assistant", "content": "Hello!", "tool_calls": [
        {"type": "function", "function": {"name": "get_time", "arguments": {"zone": "UTC", "precise": True}}}]},
    {"role": "user", "content": [{"type": "image", "image": "a.png"}, {"type": "text", "text": "What is it?"}]},
]
DEFAULT_VARIABLES = {"messages": MESSAGES, "tools": None, "add_generation_prompt": True, "bos_token": "<s>",
                     "eos_token": "</s>", "count": 3, "pi": 3.14159, "name": "World", "empty": "", "items": [3, 1, 2],
                     "data": {"b": 1, "a": [1, 2.5, None, True, "x"], "nested": {"k": "v"}},
                     "text": "  Hello, World!  ", "unicode": "héllo wörld ✓", "big": 1e16, "small": 1e-5}

# (group, name, template[, variables]); variables default to DEFAULT_VARIABLES.
CASES = [
    # ---- whitespace control and lexing ----
    ("lexer", "trim_blocks", "{% if true %}\nyes\n{% endif %}\nend"),
    ("lexer", "lstrip_blocks", "a\n    {% if true %}\n    b\n    {% endif %}\nc"),
    ("lexer", "lstrip_at_start", "   {% if true %}x{% endif %}"),
    ("lexer", "no_lstrip_for_variables", "a\n    {{ 'b' }}\n"),
    ("lexer", "no_lstrip_after_text", "a  {% if true %}b{% endif %}"),
    ("lexer", "minus_both_sides", "a  \n  {%- if true -%}  \n  b  \n  {%- endif -%}  \n  c"),
    ("lexer", "minus_on_variables", "a  \n {{- 'b' -}} \n c"),
    ("lexer", "plus_disables_lstrip", "a\n    {%+ if true %}b{% endif %}"),
    ("lexer", "plus_disables_trim", "{% if true +%}\nb{% endif %}"),
    ("lexer", "comments", "a {# a comment #} b\n{# line comment #}\nc\n  {#- stripped -#}  d"),
    ("lexer", "comment_trim_newline", "x\n{# c #}\ny"),
    ("lexer", "raw_block", "{% raw %}{{ not rendered }} {% if %}{% endraw %}!"),
    ("lexer", "raw_block_whitespace", "a\n  {%- raw -%}  {{ x }}  {%- endraw -%}  \nb"),
    ("lexer", "crlf_newlines", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n"),
    ("lexer", "trailing_newline_dropped", "a\n"),
    ("lexer", "two_trailing_newlines", "a\n\n"),
    ("lexer", "tabs_lstrip", "x\n\t\t{% if true %}y{% endif %}"),
    ("lexer", "string_escapes", r"""{{ "a\nb\t\"q\"\\ \x41\u00e9\101 \q" }}|{{ 'it\'s' }}"""),
    ("lexer", "adjacent_strings", "{{ 'a' \"b\" 'c' }}"),
    ("lexer", "numbers", "{{ 1_000 }} {{ 0x1f }} {{ 0o17 }} {{ 0b101 }} {{ 1.5e3 }} {{ 2E-2 }} {{ 00 }}"),
    ("lexer", "dict_in_variable", "{{ {'a': {'b': 1}} }}"),
    ("lexer", "multiline_tag", "{% set x = [\n  1,\n  2\n] %}{{ x }}"),
    # ---- expressions ----
    ("expressions", "literals", "{{ true }} {{ True }} {{ false }} {{ none }} {{ None }} {{ 42 }} {{ -7 }} {{ 2.50 }}"),
    ("expressions", "list_tuple_dict", "{{ [1, 'a', none, true] }} {{ (1, 'b') }} {{ (1,) }} {{ () }} {{ {'k': [1, {'n': none}]} }}"),
    ("expressions", "print_tuple", "{{ 1, 2 }}"),
    ("expressions", "string_repr", """{{ ["it's", 'say "hi"', "both ' and \\"", "back\\\\slash", "nl\\n", "é✓", "\\x01"] }}"""),
    ("expressions", "float_repr", "{{ [0.1, 1.0, 1e16, 1e-5, 123456789.123, 2.5e-7, 1e22, -0.0, 0.1 + 0.2] }} {{ big }} {{ small }}"),
    ("expressions", "arithmetic", "{{ 7 + 2 }} {{ 7 - 9 }} {{ 3 * 4 }} {{ 7 / 2 }} {{ 6 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
    ("expressions", "float_arithmetic", "{{ 7.5 // 2 }} {{ -7.5 // 2 }} {{ -7.5 % 2 }} {{ 1 + 0.5 }} {{ 2.0 ** 3 }} {{ true + 1 }}"),
    ("expressions", "precedence", "{{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ not 1 == 2 }} {{ 1 or 0 and 0 }} {{ 2 * 3 ~ 4 }}"),
    ("expressions", "string_operators", "{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none ~ true ~ 2.5 }}"),
    ("expressions", "percent_format", """{{ "%s-%d-%5.2f-%r|%x|%-4s|%04d" % ("a", 3, 2.5, "b", 255, "z", 7) }} {{ "%(a)s+%(b)s" % {"a": 1, "b": 2} }} {{ "%s" % [1, 2] }}"""),
    ("expressions", "comparisons", "{{ 1 < 2 }} {{ 2 <= 2 }} {{ 3 > 4 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 1 != 2 }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ none == none }}"),
    ("expressions", "in_operator", "{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1, 2] }} {{ 'x' in undefined_name }}"),
    ("expressions", "and_or_values", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }}|{{ none or [] }} {{ not '' }}"),
    ("expressions", "ternary", "{{ 'yes' if count > 2 else 'no' }} {{ 'a' if false }}|{{ 'x' if false else 'y' if true else 'z' }}"),
    ("expressions", "attribute_and_item", "{{ data.b }} {{ data['a'][1] }} {{ data.a.0 }} {{ data.nested.k }} {{ messages[1].content }} {{ messages[-1]['role'] }}"),
    ("expressions", "missing_attribute_prints_empty", "[{{ data.missing }}][{{ messages[10] }}][{{ none.foo }}][{{ data.missing is defined }}]"),
    ("expressions", "slicing", "{{ items[1:] }} {{ items[:-1] }} {{ items[::-1] }} {{ items[::2] }} {{ 'hello'[1:3] }} {{ unicode[::-1] }} {{ unicode[1] }} {{ (1, 2, 3)[1:] }} {{ items[5:] }}"),
    ("expressions", "calls_with_kwargs", "{{ data.get('b') }} {{ data.get('zz', 'dflt') }} {{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ dict(a=1, b='x') }}"),
    ("expressions", "unary", "{{ -count }} {{ +count }} {{ -pi }} {{ - -3 }}"),
    ("expressions", "concat_with_filters", "{{ 'x' ~ items|length ~ 'y' }} {{ -3|abs }}"),
    ("expressions", "dict_keys_types", "{{ {1: 'a', true: 'b', 1.0: 'c'} }} {{ {'a': 1, 'a': 2} }}"),
    ("expressions", "undefined_prints_empty", "[{{ nothing }}][{{ nothing|default('d') }}][{{ nothing is defined }}]"),
    ("expressions", "tests_with_arguments", "{{ 6 is divisibleby 3 }} {{ 5 is divisibleby(2) }} {{ 'a' is equalto 'a' }} {{ 3 is gt 2 }} {{ 2 is in [1, 2] }} {{ none is sameas none }} {{ 1 is not none }}"),
    # ---- statements ----
    ("statements", "if_elif_else", "{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %} {% endfor %}"),
    ("statements", "for_else", "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in nothing %}x{% else %}undefined-empty{% endfor %}"),
    ("statements", "for_filter_and_loop_length", "{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }} {% endfor %}"),
    ("statements", "loop_variables", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}[{{ loop.previtem }}|{{ loop.nextitem }}]{{ loop.cycle('o', 'e') }}{{ loop.depth }} {% endfor %}"),
    ("statements", "loop_changed", "{% for x in [1, 1, 2, 2, 1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}"),
    ("statements", "tuple_unpacking", "{% for k, v in data.items() %}{{ k }}={{ v }};{% endfor %} {% for a, (b, c) in [(1, (2, 3))] %}{{ a }}{{ b }}{{ c }}{% endfor %}"),
    ("statements", "break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
    ("statements", "nested_loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}"),
    ("statements", "set_scoping_in_loop", "{% set x = 5 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}[{{ x }}]{% endfor %}{{ x }}"),
    ("statements", "set_leaks_from_if", "{% if true %}{% set y = 3 %}{% endif %}{{ y }}"),
    ("statements", "set_not_kept_between_iterations", "{% for i in [1, 2] %}[{{ z }}]{% set z = i %}{% endfor %}[{{ z }}]"),
    ("statements", "set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}"),
    ("statements", "set_block", "{% set greeting %}Hello {{ name }}!{% endset %}[{{ greeting }}]{% set up | upper %}x{{ name }}{% endset %}{{ up }}"),
    ("statements", "namespace", "{% set ns = namespace(count=0, found=false) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.count = ns.count + 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }} {{ ns.missing }}|{{ ns }}"),
    ("statements", "macro_defaults_kwargs", "{% macro greet(who, punct='!') %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', who='c') }} {{ greet() }}|"),
    ("statements", "macro_varargs_kwargs", "{% macro m(a, b=a + 1) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1, 2, 3, c=4) }}"),
    ("statements", "macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}"),
    ("statements", "macro_late_binding", "{% macro show() %}{{ z }}{% endmacro %}{% set z = 1 %}{{ show() }}{% set z = 2 %}{{ show() }}"),
    ("statements", "macro_returns_string", "{% macro m() %}{{ 1 + 1 }}{% endmacro %}{{ m() ~ 'x' }} {{ m()|length }} {{ m }}"),
    ("statements", "with_block", "{% with a = 1, b = name %}{{ a }}{{ b }}{% endwith %}[{{ a }}]"),
    ("statements", "filter_block", "{% filter upper %}hello {{ name }}{% endfilter %}"),
    ("statements", "generation_block", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% endif %}{% endfor %}"),
    ("statements", "print_statement", "{% print 'a' ~ 'b' %}"),
    ("statements", "loop_over_dict_and_string", "{% for k in data %}{{ k }},{% endfor %} {% for c in 'abc' %}{{ c }}-{% endfor %}"),
    ("statements", "selectattr_generator_truthiness", "{% if messages|selectattr('role', 'equalto', 'nobody') %}truthy{% endif %} {{ messages|selectattr('role', 'equalto', 'user')|list|length }}"),
    ("statements", "generator_consumed_once", "{% set g = items|select %}{{ g|list }}{{ g|list }}"),
    # ---- filters ----
    ("filters", "length_count", "{{ items|length }} {{ 'héllo'|length }} {{ data|count }} {{ nothing|length }}"),
    ("filters", "trim", "[{{ text|trim }}] [{{ 'xxaxx'|trim('x') }}]"),
    ("filters", "join", "{{ items|join(', ') }} {{ [1, none, true]|join }} {{ messages|join('|', attribute='role') }}"),
    ("filters", "default", "{{ nothing|default('d') }} {{ nothing|d('dd') }} {{ ''|default('e') }}|{{ ''|default('e', true) }} {{ none|default('n') }} {{ none|default('n', boolean=true) }}"),
    ("filters", "first_last", "{{ items|first }} {{ items|last }} {{ 'abc'|first }} [{{ []|first }}] {{ (messages|selectattr('role', 'equalto', 'user')|first).content }}"),
    ("filters", "list", "{{ 'ab'|list }} {{ data|list }} {{ (1, 2)|list }} {{ nothing|list }}"),
    ("filters", "map", "{{ messages|map(attribute='role')|list }} {{ messages|map(attribute='nope', default='x')|list }} {{ ['a', 'b']|map('upper')|join }} {{ [1, 2]|map('string')|list }}"),
    ("filters", "select_reject", "{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ [0, 1, '', 'a']|select|list }} {{ [1, 5, 10]|select('gt', 3)|list }}"),
    ("filters", "selectattr_rejectattr", "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='role')|list }} {{ messages|rejectattr('tool_calls')|list|length }} {{ messages|selectattr('tool_calls', 'defined')|list|length }}"),
    ("filters", "tojson", "{{ data|tojson }} {{ 'é\"\\n'|tojson }} {{ messages[2].tool_calls[0].function.arguments|tojson }}"),
    ("filters", "tojson_options", "{{ data|tojson(indent=2) }}|{{ data|tojson(sort_keys=true, separators=(',', ':')) }}|{{ 'é'|tojson(ensure_ascii=true) }}|{{ []|tojson(indent=2) }}"),
    ("filters", "string_int_float", "{{ 12|string ~ 'x' }} {{ '42'|int + 1 }} {{ '3.7'|int }} {{ 'abc'|int(5) }} {{ 3.9|int }} {{ '0x1A'|int(base=16) }} {{ '1e3'|float }} {{ 'x'|float }} {{ 7|float }}"),
    ("filters", "case", "{{ 'hello World'|lower }} {{ 'hello'|upper }} {{ 'hELLO wORLD'|capitalize }} {{ 'hello big-world (x)'|title }}"),
    ("filters", "replace", "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '-') }}"),
    ("filters", "items_dictsort", "{{ data|items|list }} {{ {'b': 1, 'A': 2, 'c': 0}|dictsort }} {{ {'b': 1, 'A': 2}|dictsort(true) }} {{ {'b': 1, 'a': 2}|dictsort(by='value') }} {{ {'b': 1, 'a': 2}|dictsort(reverse=true) }}"),
    ("filters", "unique_sort_reverse", "{{ [3, 1, 3, 2]|unique|list }} {{ ['a', 'A', 'b']|unique|list }} {{ items|sort }} {{ items|sort(reverse=true) }} {{ ['b', 'A', 'a']|sort }} {{ ['b', 'A', 'a']|sort(case_sensitive=true) }} {{ messages|sort(attribute='role')|map(attribute='role')|list }} {{ items|reverse|list }} {{ 'abc'|reverse }}"),
    ("filters", "round_abs", "{{ 2.675|round(2) }} {{ 0.5|round }} {{ 1.5|round }} {{ 3|round }} {{ 2.5|round(0, 'floor') }} {{ 2.1|round(0, 'ceil') }} {{ -3|abs }} {{ -2.5|abs }}"),
    ("filters", "indent", "[{{ 'a\\nb\\n\\nc'|indent(2) }}] [{{ 'a\\nb'|indent(2, true) }}] [{{ 'a\\n\\nb'|indent(2, blank=true) }}] [{{ 'x\\ny'|indent('> ') }}]"),
    ("filters", "safe_escape", "{{ '<b>'|safe }} {{ '<a href=\"x\">&\\'</a>'|e }}"),
    ("filters", "batch_slice", "{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 'x')|list }} {{ [1, 2, 3, 4, 5]|slice(2)|list }}"),
    ("filters", "min_max_sum", "{{ items|min }} {{ items|max }} {{ items|sum }} {{ ['b', 'A']|min }} {{ [{'n': 2}, {'n': 1}]|min(attribute='n') }} {{ [{'n': 2}, {'n': 1}]|sum(attribute='n') }}"),
    ("filters", "format_filter", "{{ '%s and %s'|format('a', 'b') }} {{ '%(x)s'|format(x=1) }}"),
    ("filters", "center_wordcount", "[{{ 'ab'|center(7) }}] {{ 'one two  three'|wordcount }}"),
    ("filters", "attr_filter", "{{ (data|attr('items'))()|list|length }} [{{ data|attr('b') }}]"),
    ("filters", "filters_on_undefined", "[{{ nothing|trim }}][{{ nothing|upper }}][{{ nothing|join }}][{{ nothing|string }}][{{ nothing|first }}][{{ nothing|items|list }}]"),
    # ---- tests ----
    ("tests", "type_tests", "{{ [none is none, 1 is number, true is number, 1 is integer, true is integer, 1.5 is float, 'a' is string, data is mapping, items is sequence, 'a' is sequence, data is sequence, 1 is sequence, items is iterable, 1 is iterable, true is boolean, 1 is boolean, true is true, 1 is true, false is false] }}"),
    ("tests", "defined_undefined", "{{ [nothing is defined, nothing is undefined, data is defined, data.b is defined, data.zz is undefined, messages[0].content is defined] }}"),
    ("tests", "number_tests", "{{ [3 is odd, 4 is even, 3.0 is odd, 9 is divisibleby 3, 10 is divisibleby(4)] }}"),
    ("tests", "comparison_tests", "{{ [1 is eq 1, 1 is equalto 2, 1 is ne 2, 2 is gt 1, 2 is ge 2, 1 is lt 2, 2 is le 1, 'a' is in 'abc'] }}"),
    ("tests", "case_tests", "{{ ['abc' is lower, 'aBc' is lower, 'ABC' is upper, '12' is upper] }}"),
    ("tests", "callable_tests", "{{ [range is callable, data.get is callable, 1 is callable, 'upper' is filter, 'odd' is test, 'nope' is filter] }}"),
    ("tests", "negated_tests", "{{ [1 is not string, nothing is not defined, 'a' is not in 'xyz'] }}"),
    # ---- methods ----
    ("methods", "strip_family", "[{{ text.strip() }}][{{ text.lstrip() }}][{{ text.rstrip() }}][{{ 'xxhixx'.strip('x') }}][{{ '<<a>>'.lstrip('<') }}][{{ 'a\\n '.rstrip() }}]"),
    ("methods", "split_family", "{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ '  a  b '.split(None, 1) }} {{ '  a  b '.rsplit(None, 1) }} {{ 'x'.split('x') }} {{ 'l1\\nl2\\r\\nl3'.splitlines() }}"),
    ("methods", "starts_ends", "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith('lo') }} {{ 'hello'.startswith(('x', 'h')) }} {{ 'hello'.endswith(('x', 'y')) }} {{ 'hello'.startswith('l', 2) }}"),
    ("methods", "case_methods", "{{ 'Hello'.upper() }} {{ 'Hello'.lower() }} {{ 'hello world-x'.title() }} {{ 'hELLO'.capitalize() }}"),
    ("methods", "find_count_replace", "{{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'héllo'.find('l') }} {{ 'banana'.count('a') }} {{ 'banana'.count('an') }} {{ 'aaa'.replace('a', 'bb') }} {{ 'aaa'.replace('a', 'b', 1) }} {{ 'hello'.index('e') }}"),
    ("methods", "join_format", "{{ ', '.join(['a', 'b']) }} {{ '-'.join('abc') }} {{ '{} and {}'.format('x', 'y') }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='n') }} {{ '{:>5}|{:<4}|{:^5}|{:.2f}|{:05d}|{:,}'.format('r', 'l', 'c', 3.14159, 42, 1234567) }}"),
    ("methods", "misc_string_methods", "{{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ '123'.isdigit() }} {{ 'ab1'.isalpha() }} {{ '  '.isspace() }} {{ 'abc'.islower() }} {{ 'x'.center(5, '*') }} {{ 'prefix-x'.removeprefix('prefix-') }}"),
    ("methods", "dict_methods", "{{ data.keys()|list }} {{ data.values()|list|length }} {{ data.items()|list|first }} {{ data.get('b') }} {{ data.get('none') }} {{ data.items() }} {{ data.keys() }}"),
    ("methods", "list_methods", "{{ items.index(1) }} {{ items.count(3) }} {{ [1, 2, 1].count(1) }}"),
    ("methods", "method_attribute_prints_undefined_when_unsafe", "[{{ items.append }}][{{ data.pop }}]"),
    # ---- errors ----
    ("errors", "raise_exception", "line one\n{% if messages[0].role == 'system' %}{{ raise_exception('System messages are not allowed: ' ~ messages[0].content) }}{% endif %}"),
    ("errors", "raise_exception_in_macro", "{% macro check(m) %}\n{% if m.role not in ['user', 'assistant'] %}\n{{ raise_exception('Unknown role: ' + m.role) }}\n{% endif %}\n{% endmacro %}\n{% for m in messages %}{{ check(m) }}{% endfor %}"),
    ("errors", "undefined_attribute_of_undefined", "a\n{{ messages[0].nope.deeper }}"),
    ("errors", "undefined_name_attribute", "{{ nothing.attr }}"),
    ("errors", "type_error_add", "x\n\n{{ 1 + 'a' }}"),
    ("errors", "concat_str_int", "{{ 'a' + 1 }}"),
    ("errors", "unsafe_append", "{% set l = [1] %}\n{{ l.append(2) }}"),
    ("errors", "unsafe_dict_update", "{{ data.update({'x': 1}) }}"),
    ("errors", "division_by_zero", "{{ 1 / 0 }}"),
    ("errors", "not_iterable", "{% for x in 42 %}{% endfor %}"),
    ("errors", "unpack_mismatch", "{% for a, b in [(1, 2, 3)] %}{% endfor %}"),
    ("errors", "call_non_callable", "{{ count() }}"),
    ("errors", "tojson_undefined", "{{ nothing|tojson }}"),
    ("errors", "int_in_string", "{{ 1 in 'abc' }}"),
    ("errors", "ns_assign_non_namespace", "{% set x = 1 %}\n{% set x.y = 2 %}"),
    ("errors", "macro_too_many_arguments", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"),
    ("errors", "macro_unknown_keyword", "{% macro m(a) %}{% endmacro %}{{ m(b=2) }}"),
    ("errors", "length_of_generator", "{{ items|select|length }}"),
    ("errors", "namespace_underscore", "{% set ns = namespace() %}{% set ns._x = 1 %}"),
    ("errors", "range_too_big", "{{ range(100001)|length }}"),
    ("errors", "slice_step_zero", "{{ items[::0] }}"),
    ("errors", "comparison_type_error", "{{ 1 < 'a' }}"),
    ("errors", "unknown_test_at_runtime", "{% if true %}\n{{ 1 is nosuchtest }}\n{% endif %}"),
    ("errors", "syntax_unknown_filter", "a\n{{ x|nosuchfilter }}"),
    ("errors", "syntax_unknown_tag", "a\nb\n{% include 'x.html' %}"),
    ("errors", "syntax_unclosed_if", "{% if true %}\nx\n"),
    ("errors", "syntax_wrong_end_tag", "{% for x in y %}\n{% endif %}"),
    ("errors", "syntax_break_outside_loop", "\n{% break %}"),
    ("errors", "syntax_unclosed_comment", "a\n{# never closed"),
    ("errors", "syntax_bad_expression", "{{ 1 + }}"),
    ("errors", "syntax_unexpected_char", "{{ a ! b }}"),
    ("errors", "syntax_do_tag", "{% do x %}"),
    ("errors", "syntax_unbalanced_bracket", "{{ [1, 2) }}"),
    ("errors", "syntax_missing_endmacro", "{% macro m() %}x"),
]


def template_error_line(exc):
    """The template line jinja2 names: the syntax error's lineno, or the last <template> frame of the traceback."""
    lineno = getattr(exc, "lineno", None)
    if lineno is not None:
        return lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<template>":
            return frame.lineno
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    import jinja2
    from transformers.utils.chat_template_utils import _compile_jinja_template

    out_cases = []
    names = set()
    for case in CASES:
        group, name, template = case[:3]
        variables = case[3] if len(case) > 3 else DEFAULT_VARIABLES
        if name in names:
            raise SystemExit(f"duplicate case name {name!r}")
        names.add(name)
        entry = {"group": group, "name": name, "template": template}
        if variables is not DEFAULT_VARIABLES:
            entry["variables"] = variables
        try:
            entry["text"] = _compile_jinja_template(template).render(**variables)
        except Exception as exc:  # noqa: BLE001 - the error is the expected result
            entry["error"] = {"type": type(exc).__name__, "message": str(exc), "line": template_error_line(exc)}
        if group == "errors" and "error" not in entry:
            raise SystemExit(f"{name}: expected an error, jinja2 rendered {entry['text']!r}")
        if group != "errors" and "error" in entry:
            raise SystemExit(f"{name}: unexpected error {entry['error']}")
        out_cases.append(entry)

    fixture = {
        "generator": "scripts/reference/make_jinja_goldens.py",
        "jinja2_version": jinja2.__version__,
        "default_variables": DEFAULT_VARIABLES,
        "cases": out_cases,
    }
    text = json.dumps(fixture, ensure_ascii=False, indent=1) + "\n"
    if args.check:
        if json.loads(OUT.read_text(encoding="utf-8")) != fixture:
            print("cases.json is out of date", file=sys.stderr)
            return 1
        print(f"cases.json up to date ({len(out_cases)} cases)")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(out_cases)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
