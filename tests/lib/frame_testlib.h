/* Helpers shared by the frame tests and the frame benchmark: test data
 * patterns and a growable byte buffer usable as a writer sink. */
#ifndef WKSP_TESTS_FRAME_TESTLIB_H
#define WKSP_TESTS_FRAME_TESTLIB_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static inline uint64_t ftl_rng(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Text like the reference vectors' "text" pattern: lines of 4..12 tokens, a
 * decimal number below 1e6 (20%) or one of 64 words (80%), separated by ' '
 * (or '=' about 1 in 7), each line ending in '\n'; cut at sz. */
static inline void ftl_fill_text(uint8_t *p, size_t sz, uint64_t seed) {
  static const char *const words[64] = {
    "slot", "leader", "transaction", "block", "vote", "stake", "account", "bank",
    "shred", "entry", "hash", "signature", "fee", "epoch", "tower", "replay",
    "gossip", "turbine", "repair", "ledger", "snapshot", "program", "instruction", "lamports",
    "validator", "cluster", "fork", "root", "commitment", "confirmed", "finalized", "processed",
    "tpu", "tvu", "quic", "packet", "batch", "bundle", "tip", "compute",
    "units", "budget", "priority", "nonce", "owner", "rent", "sysvar", "clock",
    "schedule", "pubkey", "keypair", "funk", "wksp", "alloc", "free", "tag",
    "gaddr", "partition", "cgroup", "frame", "checkpt", "restore", "volume", "footer"
  };
  uint64_t s = seed;
  size_t i = 0;
  char tok[32];
  while (i < sz) {
    int ntok = 4 + (int)(ftl_rng(&s) % 9);
    for (int t = 0; t < ntok && i < sz; t++) {
      uint64_t r = ftl_rng(&s);
      size_t n;
      if (r % 5 == 0) {
        uint64_t v = (r >> 8) % 1000000;
        char tmp[16];
        size_t k = 0;
        do { tmp[k++] = (char)('0' + v % 10); v /= 10; } while (v);
        for (n = 0; n < k; n++) tok[n] = tmp[k - 1 - n];
      } else {
        const char *w = words[(r >> 8) % 64];
        n = strlen(w);
        memcpy(tok, w, n);
      }
      tok[n++] = t == ntok - 1 ? '\n' : ((r >> 40) % 7 == 0 ? '=' : ' ');
      size_t k = n < sz - i ? n : sz - i;
      memcpy(p + i, tok, k);
      i += k;
    }
  }
}

static inline void ftl_fill_random(uint8_t *p, size_t sz, uint64_t seed) {
  uint64_t s = seed;
  size_t i = 0;
  for (; i + 8 <= sz; i += 8) {
    uint64_t v = ftl_rng(&s);
    memcpy(p + i, &v, 8);
  }
  if (i < sz) {
    uint64_t v = ftl_rng(&s);
    memcpy(p + i, &v, sz - i);
  }
}

/* Growable buffer; ftl_sink is a wksp_frame_sink_fn_t appending to it. */
typedef struct {
  uint8_t *p;
  size_t sz, cap;
} ftl_buf_t;

static inline int ftl_buf_append(ftl_buf_t *b, const void *src, size_t n) {
  if (b->cap - b->sz < n) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->sz < n) cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q) return ENOMEM;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->sz, src, n);
  b->sz += n;
  return 0;
}

static inline int ftl_sink(void *ctx, const struct iovec *iov, int iovcnt) {
  for (int i = 0; i < iovcnt; i++) {
    int e = ftl_buf_append(ctx, iov[i].iov_base, iov[i].iov_len);
    if (e) return e;
  }
  return 0;
}

/* Writes all n bytes to fd; 0 or -1. */
static inline int ftl_write_all(int fd, const void *p, size_t n) {
  const uint8_t *q = p;
  while (n) {
    ssize_t k = write(fd, q, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    q += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Feeds p[0..n) into fd in pieces of 1..piece bytes (sizes drawn from
 * seed), then closes fd; rc 0, or -1 if a write failed.  ftl_feed_main is
 * the thread body. */
typedef struct {
  int fd;
  const uint8_t *p;
  size_t n, piece;
  uint64_t seed;
  int rc;
} ftl_feed_t;

static inline void *ftl_feed_main(void *arg) {
  ftl_feed_t *f = arg;
  uint64_t s = f->seed;
  f->rc = 0;
  for (size_t i = 0; !f->rc && i < f->n;) {
    size_t k = 1 + ftl_rng(&s) % f->piece;
    if (k > f->n - i) k = f->n - i;
    f->rc = ftl_write_all(f->fd, f->p + i, k);
    i += k;
  }
  close(f->fd);
  return NULL;
}

#endif
