/* The HTTP side shared by the plaintext peers (http_asio.cpp, http_libuv.c; http_uvloop.py does the same in
 * Python): split the bytes read so far into complete requests and pick the fixed response for each.
 *
 * A request is everything up to its blank line ("\r\n\r\n"); GET requests carry no body, and a request
 * with a body (Content-Length / Transfer-Encoding) gets a 400 and the connection is closed, which keeps
 * the framing honest without a full parser. `GET /plaintext` and `GET /` answer "Hello, World!"; any
 * other path 404; a request line that is not `METHOD PATH HTTP/1.x`, or another method, 400 (then close).
 * Every server answers all the complete requests of one read, in order, with one write. The responses are
 * the same bytes in every peer (nginx adds its own Server/Date/Connection headers). */
#ifndef CORIO_BENCH_PEERS_PLAINTEXT_H
#define CORIO_BENCH_PEERS_PLAINTEXT_H

#include <stddef.h>
#include <string.h>
#include <strings.h>

#define PLAINTEXT_OK "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
#define PLAINTEXT_NOT_FOUND "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nNot Found"
#define PLAINTEXT_BAD_REQUEST                                                                                          \
  "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\n"            \
  "Bad Request"

/* A request head longer than this without its blank line is refused (the connection is closed). */
#define PLAINTEXT_MAX_HEAD 8192

struct plaintext_reply {
  const char* data;
  size_t size;
  int close_after; /* 400: write the reply, then close */
};

static inline int plaintext_has_body_header(const char* p, size_t n) {
  /* A header line that starts with Content-Length: or Transfer-Encoding: (any case). */
  const char* end = p + n;
  for (const char* q = (const char*)memchr(p, '\n', n); q != NULL && q + 1 < end;
       q = (const char*)memchr(q + 1, '\n', (size_t)(end - q - 1))) {
    const size_t rest = (size_t)(end - q - 1);
    if ((rest >= 15 && strncasecmp(q + 1, "content-length:", 15) == 0) ||
        (rest >= 18 && strncasecmp(q + 1, "transfer-encoding:", 18) == 0))
      return 1;
  }
  return 0;
}

/* Looks at the request starting at p (n bytes available). Returns the request's length and sets *reply when
 * it is complete; returns 0 when more bytes are needed. */
static inline size_t plaintext_next(const char* p, size_t n, struct plaintext_reply* reply) {
  const char* end = (const char*)memmem(p, n, "\r\n\r\n", 4);
  if (end == NULL)
    return 0;
  const size_t head = (size_t)(end - p) + 4;
  const char* line_end = (const char*)memmem(p, head, "\r\n", 2);
  const size_t line = (size_t)(line_end - p);
  const char* sp1 = (const char*)memchr(p, ' ', line);
  const char* sp2 = sp1 ? (const char*)memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
  const int well_formed = sp2 != NULL && line_end - sp2 - 1 == 8 && memcmp(sp2 + 1, "HTTP/1.", 7) == 0;
  if (!well_formed || sp1 - p != 3 || memcmp(p, "GET", 3) != 0 || plaintext_has_body_header(p, head)) {
    reply->data = PLAINTEXT_BAD_REQUEST;
    reply->size = sizeof(PLAINTEXT_BAD_REQUEST) - 1;
    reply->close_after = 1;
    return head;
  }
  const size_t path = (size_t)(sp2 - sp1 - 1);
  const int ok = (path == 10 && memcmp(sp1 + 1, "/plaintext", 10) == 0) || (path == 1 && sp1[1] == '/');
  reply->data = ok ? PLAINTEXT_OK : PLAINTEXT_NOT_FOUND;
  reply->size = ok ? sizeof(PLAINTEXT_OK) - 1 : sizeof(PLAINTEXT_NOT_FOUND) - 1;
  reply->close_after = 0;
  return head;
}

#endif
