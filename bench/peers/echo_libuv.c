/* Peer of corio's examples/echo_server for bench/compare_echo: a TCP echo server on libuv, one loop on the
 * main thread.
 *
 *   echo_libuv --port P     listens on 127.0.0.1:P until SIGINT or SIGTERM
 *
 * Every read (up to 64 KiB, into the connection's own buffer) is written straight back (uv_writer.h: no copy
 * unless the kernel takes only part of it, and then no reading until the rest is out). */
#include "server_args.h"
#include "uv_writer.h"

#include <stdio.h>

struct conn {
  uv_tcp_t tcp; /* first: the handle's address is the connection's */
  char buf[64 * 1024];
};

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  (void)suggested;
  struct conn* c = (struct conn*)h;
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  struct conn* c = (struct conn*)s;
  if (nread < 0)
    conn_close(c); /* EOF or error */
  else if (nread > 0)
    conn_reply(c, buf->base, (size_t)nread, 0);
}

static void conn_resume_reading(struct conn* c) { uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read); }

static void on_connection(uv_stream_t* server, int status) {
  if (status < 0)
    return;
  struct conn* c = (struct conn*)malloc(sizeof *c);
  if (c == NULL)
    return;
  uv_tcp_init(server->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t*)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  conn_resume_reading(c);
}

int main(int argc, char** argv) {
  return serve("echo_libuv", bench_server_port(argc, argv, "echo_libuv"), on_connection);
}
