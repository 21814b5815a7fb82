# Turns a text file into a C++ function returning its contents:
#   cmake -DINPUT=docs/openapi.json -DOUTPUT=gen.cpp -DNAMESPACE=chatorbit::ops -DFUNCTION=openapi_document -P embed.cmake
file(READ ${INPUT} CONTENT)
string(FIND "${CONTENT}" ")embed\"" CLASH)
if(NOT CLASH EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )embed\"")
endif()
file(WRITE ${OUTPUT}.tmp "// Generated from ${INPUT} by cmake/embed.cmake. Do not edit.\n#include <string_view>\nnamespace ${NAMESPACE} {\nstd::string_view ${FUNCTION}() {\n  static constexpr std::string_view text = R\"embed(${CONTENT})embed\";\n  return text;\n}\n}  // namespace ${NAMESPACE}\n")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
