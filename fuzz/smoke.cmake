# One bounded fuzz run: FUZZER over the committed seeds in CORPUS (read only) plus a fresh WORK directory
# where new inputs go, RUNS executions. Fails if the fuzzer finds a crash (it exits non-zero).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${FUZZER} ${WORK} ${CORPUS} -runs=${RUNS} -max_len=4096 -artifact_prefix=${WORK}/
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); the crashing input is in ${WORK}")
endif()
