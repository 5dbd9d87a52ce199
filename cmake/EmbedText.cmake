# cmake -DIN=file -DOUT=header -DNAME=symbol -P cmake/EmbedText.cmake
# Writes a header holding the text of IN as `inline constexpr const char NAME[]` (a raw string
# literal), so a file such as app/web/index.html is served by the binary without a build step
# of its own. The header is only rewritten when its text changes.
file(READ "${IN}" text)
string(FIND "${text}" ")t2v_embed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )t2v_embed\"")
endif()
file(RELATIVE_PATH rel "${CMAKE_CURRENT_LIST_DIR}/.." "${IN}")
set(out "// Generated from ${rel} by cmake/EmbedText.cmake; edit that file instead.\n#pragma once\n\nnamespace t2v {\n\ninline constexpr const char ${NAME}[] = R\"t2v_embed(${text})t2v_embed\";\n\n}  // namespace t2v\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL out)
  file(WRITE "${OUT}" "${out}")
endif()
