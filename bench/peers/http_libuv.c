/* Peer of corio's examples/http_server for bench/compare_http: the HTTP/1.1 plaintext server on libuv, one
 * loop on the main thread.
 *
 *   http_libuv --port P     listens on 127.0.0.1:P until SIGINT or SIGTERM
 *
 * Each read lands after the connection's unanswered bytes; every complete request in them is answered in
 * order with one write (pipelining) and the incomplete tail is kept (plaintext.h frames the requests;
 * uv_writer.h writes). */
#include "plaintext.h"
#include "server_args.h"
#include "uv_writer.h"

#include <stdio.h>

#define IN_SIZE (2 * PLAINTEXT_MAX_HEAD)
/* The shortest request ("GET / HTTP/1.1\r\n\r\n") is 18 bytes: a full input buffer holds at most
 * IN_SIZE / 18 of them, plus one bad request that ends the batch. */
#define OUT_SIZE ((IN_SIZE / 18 + 1) * sizeof(PLAINTEXT_BAD_REQUEST))

struct conn {
  uv_tcp_t tcp; /* first: the handle's address is the connection's */
  size_t have;
  char in[IN_SIZE];
};

static char out[OUT_SIZE]; /* one thread, and conn_reply copies what it cannot write at once */

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  (void)suggested;
  struct conn* c = (struct conn*)h;
  *buf = uv_buf_init(c->in + c->have, (unsigned)(IN_SIZE - c->have));
}

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  (void)buf;
  struct conn* c = (struct conn*)s;
  if (nread < 0) {
    conn_close(c); /* EOF or error */
    return;
  }
  c->have += (size_t)nread;
  size_t used = 0, out_len = 0;
  int close_after = 0;
  struct plaintext_reply reply;
  while (!close_after) {
    const size_t len = plaintext_next(c->in + used, c->have - used, &reply);
    if (len == 0)
      break;
    memcpy(out + out_len, reply.data, reply.size);
    out_len += reply.size;
    close_after = reply.close_after;
    used += len;
  }
  memmove(c->in, c->in + used, c->have - used);
  c->have -= used;
  if (c->have > PLAINTEXT_MAX_HEAD)
    close_after = 1; /* a request head that never ends */
  if (out_len > 0)
    conn_reply(c, out, out_len, close_after);
  else if (close_after)
    conn_close(c);
}

static void conn_resume_reading(struct conn* c) { uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read); }

static void on_connection(uv_stream_t* server, int status) {
  if (status < 0)
    return;
  struct conn* c = (struct conn*)malloc(sizeof *c);
  if (c == NULL)
    return;
  c->have = 0;
  uv_tcp_init(server->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t*)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  conn_resume_reading(c);
}

int main(int argc, char** argv) {
  return serve("http_libuv", bench_server_port(argc, argv, "http_libuv"), on_connection);
}
