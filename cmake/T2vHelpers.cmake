# t2v_library(NAME dir DEPS ...): a static library of every .cpp in `dir`
# (re-globbed at build time), or an interface library while the folder is empty.
function(t2v_library name)
  cmake_parse_arguments(A "" "" "DEPS;EXTRA_SOURCES" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  list(APPEND srcs ${A_EXTRA_SOURCES})
  if(srcs)
    add_library(${name} STATIC ${srcs})
    target_link_libraries(${name} PUBLIC ${A_DEPS} PRIVATE t2v_warnings)
  else()
    add_library(${name} INTERFACE)
    target_link_libraries(${name} INTERFACE ${A_DEPS})
  endif()
endfunction()

# t2v_test(NAME DIR dir LIBS ...): one GoogleTest binary from every .cpp in dir,
# registered with CTest test by test (discovered when ctest runs). NEEDS_EXE:
# the tests run the t2v program, so build it first. SERIAL: each test runs alone
# (ctest -j does not put another test beside it), for tests timed by a budget.
# ONE_PROCESS suite...: each named suite is a single CTest test that runs all of its
# tests in one process, so work its fixture shares (SetUpTestSuite) is done once.
function(t2v_test name)
  cmake_parse_arguments(A "NEEDS_EXE;SERIAL" "DIR" "LIBS;ONE_PROCESS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${A_DIR}/*.cpp)
  if(NOT srcs)
    return()
  endif()
  add_executable(${name} ${srcs})
  target_link_libraries(${name} PRIVATE ${A_LIBS} GTest::gtest GTest::gtest_main t2v_warnings)
  target_compile_definitions(${name} PRIVATE
    T2V_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    T2V_TEST_DATA_DIR="${CMAKE_SOURCE_DIR}/tests/data"
    T2V_EXE="$<TARGET_FILE:t2v>")
  if(A_NEEDS_EXE)
    add_dependencies(${name} t2v)  # tests that run the t2v program (T2V_EXE)
  endif()
  set(filter)
  if(A_ONE_PROCESS)
    list(JOIN A_ONE_PROCESS ".*:" suites)
    set(filter TEST_FILTER "-${suites}.*")
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60 ${filter}
    PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2" RUN_SERIAL ${A_SERIAL})
  foreach(suite IN LISTS A_ONE_PROCESS)
    add_test(NAME ${suite} COMMAND ${name} --gtest_filter=${suite}.*)
    set_tests_properties(${suite} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2" RUN_SERIAL ${A_SERIAL})
  endforeach()
endfunction()
