# Run by ctest (a TEST_INCLUDE_FILES script, written per test program by
# mproc_add_test): registers one ctest entry per CMocka case and start
# method, as the program itself lists them (test_x --list), so new cases
# appear without editing any list and a hang names the case that hung.
# The list is cached next to the program and redone when it is rebuilt.
# Inputs: T_NAME T_EXE T_EMULATOR T_DIR T_TIMEOUT T_CACHE
if(NOT EXISTS "${T_EXE}")
  add_test("${T_NAME}.not-built" "${T_EXE}")
  return()
endif()
if(NOT EXISTS "${T_CACHE}" OR "${T_EXE}" IS_NEWER_THAN "${T_CACHE}")
  execute_process(COMMAND ${T_EMULATOR} "${T_EXE}" --list WORKING_DIRECTORY "${T_DIR}"
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc TIMEOUT 300)
  if(NOT rc EQUAL 0)
    # Visible, not silent: this entry fails the run the same way.
    add_test("${T_NAME}.list" ${T_EMULATOR} "${T_EXE}" --list)
    set_tests_properties("${T_NAME}.list" PROPERTIES WORKING_DIRECTORY "${T_DIR}")
    return()
  endif()
  string(REPLACE "\r" "" out "${out}")
  string(REPLACE "\n" ";" lines "${out}")
  set(emu "")
  foreach(e IN LISTS T_EMULATOR)
    string(APPEND emu " [==[${e}]==]")
  endforeach()
  set(text "")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^([A-Za-z_][A-Za-z0-9_]*) (.+)$")
      continue()
    endif()
    set(case ${CMAKE_MATCH_1})
    string(REPLACE " " ";" methods "${CMAKE_MATCH_2}")
    foreach(m IN LISTS methods)
      if(m STREQUAL "-")
        set(test "${T_NAME}.${case}")
        set(args "--case ${case}")
        set(m once)
      else()
        set(test "${T_NAME}.${case}.${m}")
        set(args "--method ${m} --case ${case}")
      endif()
      string(APPEND text "add_test([==[${test}]==]${emu} [==[${T_EXE}]==] ${args})\n"
        "set_tests_properties([==[${test}]==] PROPERTIES TIMEOUT ${T_TIMEOUT} "
        "WORKING_DIRECTORY [==[${T_DIR}]==] LABELS [==[${T_NAME};${m}]==])\n")
    endforeach()
  endforeach()
  file(WRITE "${T_CACHE}" "${text}")
endif()
include("${T_CACHE}")
