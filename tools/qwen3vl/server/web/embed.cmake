# Turns the web page into a C++ header: cmake -DINPUT=index.html -DOUTPUT=web_page_data.h -P embed.cmake
file(READ "${INPUT}" content HEX)
string(LENGTH "${content}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp" "// Generated from tools/qwen3vl/server/web/index.html by web/embed.cmake; do not edit.\n#pragma once\n#include <cstddef>\nstatic const unsigned char kWebPageBytes[] = {\n${bytes}0x00};\nstatic const char* const kWebPage = reinterpret_cast<const char*>(kWebPageBytes);\nstatic const std::size_t kWebPageSize = ${size};\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")
file(REMOVE "${OUTPUT}.tmp")
