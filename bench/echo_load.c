/* Closed-loop load generator for TCP echo servers (bench/compare_echo runs it against each server).
 *
 *   echo_load --port P [--host 127.0.0.1] [--connections N] [--duration SECONDS] [--size BYTES] [--reconnect 1]
 *
 * Opens N connections (default 64), then, on one thread over epoll, each connection sends a SIZE-byte message
 * (default 64), waits until all SIZE bytes have come back, and sends the next one, for DURATION seconds
 * (default 5). Every byte that comes back is compared with what was sent: each message has its own content
 * (a function of the connection, the message's number and the offset), so lost, repeated, reordered or
 * foreign bytes are caught. After the deadline no new message starts and the ones in flight must complete
 * within 2 s (they are checked but not counted). With --reconnect 1, every message goes on a new connection:
 * the client closes each connection once its message has come back and connects again (a blocking connect,
 * which on loopback returns once the server's kernel has queued the connection), so the server accepts,
 * serves one message and sees the close, over and over.
 *
 * Prints one line, e.g.
 *   echo_load: 64 connections, 64-byte messages, 5.00 s: 1234567 messages, 246913.4 messages/s, 0 errors
 * and exits 0; on any error (connect failure, EOF, reset, a wrong byte, a message stuck after the deadline)
 * it prints what happened on stderr and exits 1. Exit status 2: bad arguments. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  uint32_t id;
  uint64_t seq;       /* number of the message in flight */
  size_t sent, got;   /* bytes of it sent / received back */
  int in_flight;      /* a message was sent and has not fully come back */
  int want_out;       /* EPOLLOUT armed: the kernel took only part of the message */
  unsigned char* msg; /* the message in flight */
};

static size_t msg_size = 64;
static int reconnect = 0;
static unsigned char* scratch;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fail(const struct conn* c, const char* what) {
  if (c != NULL)
    fprintf(stderr, "echo_load: connection %u, message %llu: %s\n", c->id, (unsigned long long)c->seq, what);
  else
    fprintf(stderr, "echo_load: %s\n", what);
  exit(1);
}

static void fill(struct conn* c) {
  /* Different for every connection and message, and not periodic within a message of up to 64 KiB. */
  uint32_t x = (c->id + 1u) * 2654435761u ^ (uint32_t)(c->seq * 40503u + 1u);
  for (size_t i = 0; i < msg_size; ++i) {
    x = x * 1664525u + 1013904223u;
    c->msg[i] = (unsigned char)(x >> 24);
  }
}

static void arm(int ep, struct conn* c, int want_out) {
  if (c->want_out == want_out)
    return;
  struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data = {.ptr = c}};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
    fail(c, strerror(errno));
  c->want_out = want_out;
}

static void send_rest(int ep, struct conn* c) {
  while (c->sent < msg_size) {
    const ssize_t n = send(c->fd, c->msg + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      fail(c, strerror(errno));
    }
    c->sent += (size_t)n;
  }
  arm(ep, c, c->sent < msg_size);
}

static void start_message(int ep, struct conn* c) {
  ++c->seq;
  fill(c);
  c->sent = c->got = 0;
  c->in_flight = 1;
  send_rest(ep, c);
}

/* Reads what has come back; returns 1 when the whole message has. */
static int receive(struct conn* c) {
  for (;;) {
    /* Between messages nothing may arrive: read anyway, to catch it. */
    const ssize_t n = recv(c->fd, scratch, c->in_flight ? msg_size - c->got : msg_size, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      fail(c, strerror(errno));
    }
    if (n == 0)
      fail(c, "the server closed the connection");
    if (!c->in_flight || c->got + (size_t)n > c->sent)
      fail(c, "received bytes that were not sent yet");
    if (memcmp(scratch, c->msg + c->got, (size_t)n) != 0)
      fail(c, "a received byte differs from the one sent");
    c->got += (size_t)n;
    if (c->got == msg_size) {
      c->in_flight = 0;
      return 1;
    }
  }
}

static int connect_to(const char* host, int port) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
    fail(NULL, "--host must be an IPv4 address");
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    fail(NULL, strerror(errno));
  if (connect(fd, (const struct sockaddr*)&addr, sizeof addr) != 0) {
    fprintf(stderr, "echo_load: connect to %s:%d: %s\n", host, port, strerror(errno));
    exit(1);
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static void usage(void) {
  fprintf(stderr, "usage: echo_load --port P [--host 127.0.0.1] [--connections N] [--duration SECONDS] "
                  "[--size BYTES] [--reconnect 0|1]\n");
  exit(2);
}

static double number(const char* s, double lo, double hi) {
  char* end = NULL;
  const double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= lo && v <= hi))
    usage();
  return v;
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 0, nconn = 64;
  double duration = 5.0;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc)
      usage();
    if (strcmp(argv[i], "--port") == 0)
      port = (int)number(argv[i + 1], 1, 65535);
    else if (strcmp(argv[i], "--host") == 0)
      host = argv[i + 1];
    else if (strcmp(argv[i], "--connections") == 0)
      nconn = (int)number(argv[i + 1], 1, 100000);
    else if (strcmp(argv[i], "--duration") == 0)
      duration = number(argv[i + 1], 0.01, 86400);
    else if (strcmp(argv[i], "--size") == 0)
      msg_size = (size_t)number(argv[i + 1], 1, 1 << 24);
    else if (strcmp(argv[i], "--reconnect") == 0)
      reconnect = (int)number(argv[i + 1], 0, 1);
    else
      usage();
  }
  if (port == 0)
    usage();

  struct conn* conns = calloc((size_t)nconn, sizeof *conns);
  unsigned char* msgs = malloc((size_t)nconn * msg_size);
  scratch = malloc(msg_size);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (conns == NULL || msgs == NULL || scratch == NULL || ep < 0)
    fail(NULL, "out of memory or no epoll");
  for (int i = 0; i < nconn; ++i) {
    struct conn* c = &conns[i];
    c->fd = connect_to(host, port);
    c->id = (uint32_t)i;
    c->msg = msgs + (size_t)i * msg_size;
    struct epoll_event ev = {.events = EPOLLIN, .data = {.ptr = c}};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
      fail(c, strerror(errno));
  }

  const double start = now_s();
  const double deadline = start + duration;
  for (int i = 0; i < nconn; ++i)
    start_message(ep, &conns[i]);
  uint64_t done = 0;
  int in_flight = nconn;
  int running = 1;
  struct epoll_event events[256];
  while (in_flight > 0) {
    const int n = epoll_wait(ep, events, 256, 100);
    if (n < 0 && errno != EINTR)
      fail(NULL, strerror(errno));
    const double t = now_s();
    if (running && t >= deadline)
      running = 0;
    if (!running && t >= deadline + 2.0) {
      fprintf(stderr, "echo_load: %d messages had not come back 2 s after the end\n", in_flight);
      return 1;
    }
    for (int k = 0; k < n; ++k) {
      struct conn* c = events[k].data.ptr;
      if (events[k].events & EPOLLOUT)
        send_rest(ep, c);
      if ((events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && receive(c)) {
        if (running && now_s() < deadline) {
          ++done;
          if (reconnect) {
            close(c->fd); /* also leaves the epoll set */
            c->fd = connect_to(host, port);
            c->want_out = 0;
            struct epoll_event ev = {.events = EPOLLIN, .data = {.ptr = c}};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
              fail(c, strerror(errno));
          }
          start_message(ep, c);
        } else {
          running = 0;
          --in_flight;
        }
      }
    }
  }
  printf("echo_load: %d connections%s, %zu-byte messages, %.2f s: %llu messages, %.1f messages/s, 0 errors\n", nconn,
         reconnect ? " (a new one per message)" : "", msg_size, duration, (unsigned long long)done,
         (double)done / duration);
  for (int i = 0; i < nconn; ++i)
    close(conns[i].fd);
  close(ep);
  free(scratch);
  free(msgs);
  free(conns);
  return 0;
}
