# Installs headers, the library and a package config, so `find_package(corio)` gives corio::corio.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS corio EXPORT corioTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT corioTargets NAMESPACE corio:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/corio)

configure_package_config_file(cmake/corioConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/corioConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/corio)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/corioConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/corioConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/corioConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/corio)
