# corio_warnings(target): the project's warning set, as errors when CORIO_WERROR is on.
function(corio_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(CORIO_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
