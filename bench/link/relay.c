/*
 * fur-relay: a userspace link emulator for benchmarks (kernel netem is not available here).
 *
 *   fur-relay relay LISTEN_PORT UPSTREAM_PORT ONE_WAY_DELAY_US RATE_MBIT QUEUE_BYTES [PORT_FILE]
 *   fur-relay sink PORT                 accept one connection, read to EOF, print bytes and seconds
 *   fur-relay source PORT BYTES         connect to 127.0.0.1:PORT, write BYTES as fast as possible
 *
 * Every byte read from one side is stamped with the time the emulated wire finishes sending it
 * (the wire serialises at RATE_MBIT, 0 = unlimited) plus ONE_WAY_DELAY_US, and is written to the
 * other side no earlier than that. Each direction holds at most rate × delay (bytes on the wire)
 * plus QUEUE_BYTES (the bottleneck's queue); when that is full the relay stops reading, so the
 * sender is held back by TCP flow control instead of an unbounded buffer. Socket buffers on the
 * relay's side are kept small so that they add little hidden queueing.
 *
 * All connections through one relay share one link: one wire per direction (its rate, its
 * queue), as several TCP connections share a real path. Reads take turns (a few KiB per
 * connection per pass), so no connection is starved while the queue is full.
 *
 * One thread, epoll, nanosecond timeouts (epoll_pwait2). LISTEN_PORT 0 picks a free port; the
 * chosen port is printed on stdout ("port N") and written to PORT_FILE when given.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_READ (16 * 1024)
/* reads per connection per pass: connections take turns at a full link */
#define READS_PER_TURN 4
#define SOCK_BUF (128 * 1024)
#define MAX_RECORDS (1 << 16)

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

/* A run of bytes read at once, and when its last byte reaches the far end of the wire. */
struct record {
  int64_t due;
  uint32_t len;
};

/* One direction of the emulated link, shared by every connection. */
struct link {
  int64_t wire_free; /* when the wire finishes its current backlog */
  size_t used, cap; /* bytes held (on the wire or queued), and the most it may hold */
};

static struct link uplink, downlink;

struct direction {
  struct link *link;
  int from, to;
  uint8_t *buf; /* ring of `cap` bytes */
  size_t cap, head, used; /* head: next byte to deliver */
  size_t head_sent; /* bytes of the head record already written */
  struct record *rec;
  size_t rec_head, rec_count;
  int eof; /* `from` reached end of stream */
  int shut; /* `to` was shut down for writing */
  int blocked; /* `to` answered EAGAIN: wait for EPOLLOUT */
  int stalled; /* reading stopped because the ring was full */
};

struct pair {
  int a, b; /* a: client side, b: upstream side */
  struct direction up, down; /* up: a → b, down: b → a */
  int dead;
  uint32_t ev_a, ev_b; /* epoll interest currently registered */
  struct pair *next;
};

static int64_t delay_ns;
static double ns_per_byte; /* 0 = unlimited */
static size_t queue_bytes;
static int epfd;
static struct pair *pairs;

static void small_buffers(int fd) {
  int v = SOCK_BUF, one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static size_t link_cap(void) {
  double wire = ns_per_byte > 0 ? (double)delay_ns / ns_per_byte : 0;
  size_t cap = (size_t)wire + queue_bytes;
  return cap < 4 * MAX_READ ? 4 * MAX_READ : cap;
}

static void init_direction(struct direction *d, struct link *link, int from, int to) {
  memset(d, 0, sizeof *d);
  d->link = link;
  d->from = from;
  d->to = to;
  /* one connection may hold the whole link; the link's own bound applies to all together */
  d->cap = link->cap;
  d->buf = malloc(d->cap);
  d->rec = malloc(sizeof(struct record) * MAX_RECORDS);
  if (!d->buf || !d->rec) die("malloc");
}

/* Read what the ring has room for; stamp each read with its arrival time at the far end. */
static void pull(struct pair *p, struct direction *d) {
  struct link *l = d->link;
  d->stalled = 0;
  for (int turn = 0; turn < READS_PER_TURN; turn++) {
    if (d->eof) return;
    if (d->used == d->cap || l->used >= l->cap || d->rec_count == MAX_RECORDS) {
      d->stalled = 1;
      return;
    }
    size_t tail = (d->head + d->used) % d->cap;
    size_t room = d->cap - d->used;
    if (room > d->cap - tail) room = d->cap - tail; /* contiguous part */
    if (room > l->cap - l->used) room = l->cap - l->used;
    if (room > MAX_READ) room = MAX_READ;
    ssize_t n = read(d->from, d->buf + tail, room);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      p->dead = 1;
      return;
    }
    if (n == 0) {
      d->eof = 1;
      return;
    }
    int64_t t = now_ns();
    int64_t start = l->wire_free > t ? l->wire_free : t;
    l->wire_free = start + (int64_t)(ns_per_byte * (double)n);
    struct record *r = &d->rec[(d->rec_head + d->rec_count) % MAX_RECORDS];
    r->due = l->wire_free + delay_ns;
    r->len = (uint32_t)n;
    d->rec_count++;
    d->used += (size_t)n;
    l->used += (size_t)n;
  }
  d->stalled = 1; /* its turn is over: more may be waiting */
}

/* Write every record that is due; returns ns until the next one is due (-1: none waiting). */
static int64_t push(struct pair *p, struct direction *d, int64_t t) {
  while (d->rec_count > 0 && !d->blocked) {
    struct record *r = &d->rec[d->rec_head];
    if (r->due > t) return r->due - t;
    size_t left = r->len - d->head_sent;
    size_t contiguous = d->cap - d->head;
    size_t n = left < contiguous ? left : contiguous;
    ssize_t w = write(d->to, d->buf + d->head, n);
    if (w < 0) {
      if (errno == EAGAIN) {
        d->blocked = 1;
        return -1;
      }
      if (errno == EINTR) continue;
      p->dead = 1;
      return -1;
    }
    d->head = (d->head + (size_t)w) % d->cap;
    d->used -= (size_t)w;
    d->link->used -= (size_t)w;
    d->head_sent += (size_t)w;
    if (d->head_sent == r->len) {
      d->head_sent = 0;
      d->rec_head = (d->rec_head + 1) % MAX_RECORDS;
      d->rec_count--;
    }
  }
  if (d->rec_count == 0 && d->eof && !d->shut) {
    shutdown(d->to, SHUT_WR);
    d->shut = 1;
  }
  return -1;
}

/* ns until the head record may be written (0: now), or -1 when nothing waits for time */
static int64_t next_due(struct direction *d, int64_t t) {
  /* the end of the stream was read after the last push: the shutdown is due now */
  if (d->eof && !d->shut && d->rec_count == 0) return 0;
  if (d->rec_count == 0 || d->blocked) return -1;
  int64_t due = d->rec[d->rec_head].due;
  return due > t ? due - t : 0;
}

static void update_interest(struct pair *p) {
  /* a: readable when `up` has room, writable when `down` is blocked; b likewise */
  struct epoll_event ea = {0}, eb = {0};
  ea.data.ptr = p;
  eb.data.ptr = (void *)((uintptr_t)p | 1);
  if (!p->up.eof && p->up.used < p->up.cap && uplink.used < uplink.cap) ea.events |= EPOLLIN;
  if (p->down.blocked) ea.events |= EPOLLOUT;
  if (!p->down.eof && p->down.used < p->down.cap && downlink.used < downlink.cap) eb.events |= EPOLLIN;
  if (p->up.blocked) eb.events |= EPOLLOUT;
  if (ea.events != p->ev_a) {
    epoll_ctl(epfd, EPOLL_CTL_MOD, p->a, &ea);
    p->ev_a = ea.events;
  }
  if (eb.events != p->ev_b) {
    epoll_ctl(epfd, EPOLL_CTL_MOD, p->b, &eb);
    p->ev_b = eb.events;
  }
}

static void free_pair(struct pair *p) {
  p->up.link->used -= p->up.used;
  p->down.link->used -= p->down.used;
  close(p->a);
  close(p->b);
  free(p->up.buf);
  free(p->up.rec);
  free(p->down.buf);
  free(p->down.rec);
  free(p);
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  small_buffers(fd); /* accepted sockets inherit the buffer sizes (window scale is set at SYN) */
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
  if (listen(fd, 128) < 0) die("listen");
  return fd;
}

static int bound_port(int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &len);
  return ntohs(sa.sin_port);
}

static int connect_to(int port, int small) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (small) small_buffers(fd);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int relay(int listen_port, int upstream, const char *port_file) {
  int lfd = listen_on(listen_port);
  int port = bound_port(lfd);
  printf("port %d\n", port);
  fflush(stdout);
  if (port_file) {
    FILE *f = fopen(port_file, "w");
    if (!f) die(port_file);
    fprintf(f, "%d\n", port);
    fclose(f);
  }
  nonblock(lfd);
  uplink.cap = downlink.cap = link_cap();
  epfd = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event events[64];
  int64_t wait_ns = -1;
  for (;;) {
    struct timespec ts, *tp = NULL;
    if (wait_ns >= 0) {
      ts.tv_sec = wait_ns / 1000000000LL;
      ts.tv_nsec = wait_ns % 1000000000LL;
      tp = &ts;
    }
    int n = epoll_pwait2(epfd, events, 64, tp, NULL);
    if (n < 0 && errno != EINTR) die("epoll_pwait2");
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        for (;;) {
          int a = accept(lfd, NULL, NULL);
          if (a < 0) break;
          int b = connect_to(upstream, 1);
          if (b < 0) {
            close(a);
            continue;
          }
          small_buffers(a);
          nonblock(a);
          nonblock(b);
          struct pair *p = calloc(1, sizeof *p);
          p->a = a;
          p->b = b;
          init_direction(&p->up, &uplink, a, b);
          init_direction(&p->down, &downlink, b, a);
          struct epoll_event ea = {.events = EPOLLIN, .data.ptr = p};
          struct epoll_event eb = {.events = EPOLLIN, .data.ptr = (void *)((uintptr_t)p | 1)};
          epoll_ctl(epfd, EPOLL_CTL_ADD, a, &ea);
          epoll_ctl(epfd, EPOLL_CTL_ADD, b, &eb);
          p->ev_a = p->ev_b = EPOLLIN;
          p->next = pairs;
          pairs = p;
        }
        continue;
      }
      struct pair *p = (struct pair *)((uintptr_t)events[i].data.ptr & ~(uintptr_t)1);
      int side_b = (uintptr_t)events[i].data.ptr & 1;
      uint32_t e = events[i].events;
      if (e & EPOLLOUT) (side_b ? &p->up : &p->down)->blocked = 0;
      if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) pull(p, side_b ? &p->down : &p->up);
    }
    /* deliver what is due on every connection, and work out the next deadline */
    int64_t t = now_ns();
    wait_ns = -1;
    for (struct pair **pp = &pairs; *pp;) {
      struct pair *p = *pp;
      push(p, &p->up, t);
      push(p, &p->down, t);
      /* reading may have stopped because a ring was full; delivering made room */
      if (p->up.stalled) pull(p, &p->up);
      if (p->down.stalled) pull(p, &p->down);
      int64_t w1 = next_due(&p->up, t);
      int64_t w2 = next_due(&p->down, t);
      int done = p->up.shut && p->down.shut;
      if (p->dead || done) {
        *pp = p->next;
        free_pair(p);
        continue;
      }
      update_interest(p);
      if (w1 >= 0 && (wait_ns < 0 || w1 < wait_ns)) wait_ns = w1;
      if (w2 >= 0 && (wait_ns < 0 || w2 < wait_ns)) wait_ns = w2;
      pp = &p->next;
    }
  }
  return 0;
}

static int sink(int port) {
  int lfd = listen_on(port);
  printf("port %d\n", bound_port(lfd));
  fflush(stdout);
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0) die("accept");
  int v = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
  static uint8_t buf[1 << 20];
  int64_t t0 = now_ns(), total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    total += n;
  }
  double s = (double)(now_ns() - t0) / 1e9;
  printf("bytes %lld seconds %.4f MBps %.1f\n", (long long)total, s, (double)total / 1e6 / s);
  return 0;
}

static int source(int port, long long bytes) {
  int fd = connect_to(port, 0);
  if (fd < 0) die("connect");
  static uint8_t buf[1 << 20];
  memset(buf, 0x5a, sizeof buf);
  long long left = bytes;
  while (left > 0) {
    ssize_t n = write(fd, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    left -= n;
  }
  shutdown(fd, SHUT_WR);
  char c;
  while (read(fd, &c, 1) > 0) {}
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 7 && strcmp(argv[1], "relay") == 0) {
    delay_ns = atoll(argv[4]) * 1000LL;
    double mbit = atof(argv[5]);
    ns_per_byte = mbit > 0 ? 8e3 / mbit : 0; /* 8 bits / (mbit × 1e6 bit/s) in ns */
    queue_bytes = (size_t)atoll(argv[6]);
    return relay(atoi(argv[2]), atoi(argv[3]), argc > 7 ? argv[7] : NULL);
  }
  if (argc == 3 && strcmp(argv[1], "sink") == 0) return sink(atoi(argv[2]));
  if (argc == 4 && strcmp(argv[1], "source") == 0) return source(atoi(argv[2]), atoll(argv[3]));
  fprintf(stderr, "usage: %s relay LISTEN UPSTREAM DELAY_US RATE_MBIT QUEUE_BYTES [PORT_FILE] | sink PORT | source PORT BYTES\n", argv[0]);
  return 2;
}
