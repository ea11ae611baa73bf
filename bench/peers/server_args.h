/* The command line every bench server takes (corio's example servers take the same): `--port P`, listening
 * on 127.0.0.1. Shared by the C and C++ peers. */
#ifndef CORIO_BENCH_PEERS_SERVER_ARGS_H
#define CORIO_BENCH_PEERS_SERVER_ARGS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns the port, or exits with status 2 and a usage line. */
static inline int bench_server_port(int argc, char** argv, const char* name) {
  if (argc == 3 && strcmp(argv[1], "--port") == 0) {
    char* end = NULL;
    const long port = strtol(argv[2], &end, 10);
    if (end != argv[2] && *end == '\0' && port > 0 && port < 65536)
      return (int)port;
  }
  fprintf(stderr, "usage: %s --port P   (listens on 127.0.0.1:P until SIGINT or SIGTERM)\n", name);
  exit(2);
}

#endif
