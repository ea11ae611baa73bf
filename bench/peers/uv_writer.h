/* Shared by the libuv peers (http_libuv.c, echo_libuv.c): one connection and its write path.
 *
 * A reply is first written with uv_try_write from the caller's buffer, so the common case copies and
 * allocates nothing. What the kernel does not take is copied into a heap write request and handed to
 * uv_write, and reading stops until that write completes: at most one write is in flight per connection,
 * and a client that does not read stalls only itself. */
#ifndef CORIO_BENCH_PEERS_UV_WRITER_H
#define CORIO_BENCH_PEERS_UV_WRITER_H

#include <uv.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conn; /* the peer's connection: starts with a uv_tcp_t */
static void conn_resume_reading(struct conn* c);

struct pending_write {
  uv_write_t req;
  struct conn* conn;
  int close_after;
  char data[];
};

static void conn_on_close(uv_handle_t* h) { free(h); }

static void conn_close(struct conn* c) {
  uv_handle_t* h = (uv_handle_t*)c;
  if (!uv_is_closing(h))
    uv_close(h, conn_on_close); /* pending writes end with UV_ECANCELED before conn_on_close */
}

static void conn_on_write(uv_write_t* req, int status) {
  struct pending_write* w = (struct pending_write*)req;
  struct conn* c = w->conn;
  const int close_after = w->close_after;
  free(w);
  if (status < 0 || close_after)
    conn_close(c);
  else
    conn_resume_reading(c);
}

/* Writes size bytes from data (which the caller may reuse at once); closes the connection afterwards when
 * close_after is set. */
static void conn_reply(struct conn* c, const char* data, size_t size, int close_after) {
  uv_stream_t* s = (uv_stream_t*)c;
  uv_buf_t buf = uv_buf_init((char*)data, (unsigned)size);
  int n = uv_try_write(s, &buf, 1);
  if (n == UV_EAGAIN)
    n = 0;
  if (n < 0) {
    conn_close(c);
    return;
  }
  if ((size_t)n == size) {
    if (close_after)
      conn_close(c);
    return;
  }
  struct pending_write* w = (struct pending_write*)malloc(sizeof *w + size - (size_t)n);
  if (w == NULL) {
    conn_close(c);
    return;
  }
  memcpy(w->data, data + n, size - (size_t)n);
  w->conn = c;
  w->close_after = close_after;
  uv_read_stop(s);
  buf = uv_buf_init(w->data, (unsigned)(size - (size_t)n));
  if (uv_write(&w->req, s, &buf, 1, conn_on_write) != 0) {
    free(w);
    conn_close(c);
  }
}

static void on_signal(uv_signal_t* handle, int signum) {
  (void)signum;
  uv_stop(handle->loop);
}

/* Listens on 127.0.0.1:port, runs the loop until SIGINT or SIGTERM. Returns the exit status. */
static int serve(const char* name, int port, uv_connection_cb on_connection) {
  uv_loop_t* loop = uv_default_loop();
  static uv_tcp_t server;
  static uv_signal_t sigint, sigterm;
  struct sockaddr_in addr;
  int rc = uv_ip4_addr("127.0.0.1", port, &addr);
  if (rc == 0)
    rc = uv_tcp_init(loop, &server);
  if (rc == 0)
    rc = uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t*)&server, 1024, on_connection);
  if (rc != 0) {
    fprintf(stderr, "%s: listen on 127.0.0.1:%d: %s\n", name, port, uv_strerror(rc));
    return 1;
  }
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}

#endif
