/* Frame scripts (random frames of random buffers, written then read back
 * and compared), pipe and memfd plumbing, and a pipe whose side in the
 * calling thread is interrupted by signals: shared by the writer and reader
 * tests of the frame layer (tests/frame/). */
#ifndef WKSP_TESTS_LIB_FRAME_SCRIPT_H
#define WKSP_TESTS_LIB_FRAME_SCRIPT_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include "test.h"
#include "frame_testlib.h"
#include "frame/frame_private.h"
#include <wksp/frame.h>

static uint64_t g_seed; /* the program's seed (test_seed()), set by main */

/* ---- frame scripts ------------------------------------------------------ */

typedef struct {
  int is_meta;
  size_t sz;
  uint8_t *buf;
} tbuf_t;

typedef struct {
  int style;
  int nbuf;
  tbuf_t *bufs;
  uint64_t off, end; /* as reported by the writer */
} tframe_t;

typedef struct {
  int nframe;
  tframe_t *frames;
  size_t total; /* uncompressed bytes */
} tscript_t;

static inline size_t pick_size(uint64_t *s) {
  uint64_t r = ftl_rng(s) % 100;
  if (r < 30) return ftl_rng(s) % 101;
  if (r < 55) return ftl_rng(s) % 65537;
  if (r < 65) { /* chunk edges */
    static const size_t edge[] = { 0, 1, 65535, 65536, 65537, 131071, 131072, 131073, 196608, 196609 };
    return edge[ftl_rng(s) % (sizeof edge / sizeof edge[0])];
  }
  if (r < 92) return 65536 + ftl_rng(s) % (300 * 1024);
  return ftl_rng(s) % (3u << 20);
}

static inline void fill_mixed(uint8_t *p, size_t sz, uint64_t *s) {
  switch (ftl_rng(s) % 5) {
  case 0: ftl_fill_random(p, sz, ftl_rng(s)); break;
  case 1: memset(p, 0, sz); break;
  case 2: /* blocks of text, random and zeros: exercises matches near chunk edges */
    for (size_t i = 0; i < sz; i += 4096) {
      size_t n = sz - i < 4096 ? sz - i : 4096;
      uint64_t k = ftl_rng(s);
      if (k % 3 == 0) ftl_fill_random(p + i, n, k);
      else if (k % 3 == 1) ftl_fill_text(p + i, n, k);
      else memset(p + i, (int)(k >> 8), n);
    }
    break;
  default: ftl_fill_text(p, sz, ftl_rng(s)); break;
  }
}

static inline tscript_t script_new(uint64_t seed, size_t budget) {
  uint64_t s = seed;
  tscript_t sc = { 0 };
  int nframe = 1 + (int)(ftl_rng(&s) % 12);
  sc.frames = calloc((size_t)nframe, sizeof *sc.frames);
  for (int f = 0; f < nframe; f++) {
    tframe_t *fr = &sc.frames[sc.nframe++];
    fr->style = (int)(ftl_rng(&s) % 3); /* 0 = default RAW */
    int nbuf = (int)(ftl_rng(&s) % 14);
    fr->bufs = calloc((size_t)nbuf + 1, sizeof *fr->bufs);
    for (int b = 0; b < nbuf; b++) {
      size_t sz = pick_size(&s);
      if (sc.total + sz > budget) sz = ftl_rng(&s) % 200;
      tbuf_t *tb = &fr->bufs[fr->nbuf++];
      tb->sz = sz;
      tb->is_meta = sz <= WKSP_FRAME_META_MAX && (ftl_rng(&s) & 1);
      tb->buf = malloc(sz ? sz : 1);
      fill_mixed(tb->buf, sz, &s);
      sc.total += sz;
    }
  }
  return sc;
}

static inline void script_free(tscript_t *sc) {
  for (int f = 0; f < sc->nframe; f++) {
    for (int b = 0; b < sc->frames[f].nbuf; b++) free(sc->frames[f].bufs[b].buf);
    free(sc->frames[f].bufs);
  }
  free(sc->frames);
}

/* Writes the script; records frame offsets in the script (first run) or
 * checks them (later runs).  Meta buffers are clobbered after each call to
 * prove the writer copied them, then restored. */
static inline int script_write(wksp_frame_writer_t *w, tscript_t *sc, int record) {
  for (int f = 0; f < sc->nframe; f++) {
    tframe_t *fr = &sc->frames[f];
    uint64_t off, end;
    if (wksp_frame_writer_open(w, fr->style, &off)) return -1;
    for (int b = 0; b < fr->nbuf; b++) {
      tbuf_t *tb = &fr->bufs[b];
      if (tb->is_meta) {
        uint8_t *copy = malloc(tb->sz ? tb->sz : 1);
        memcpy(copy, tb->buf, tb->sz);
        int rc = wksp_frame_writer_meta(w, copy, tb->sz);
        memset(copy, 0xa5, tb->sz);
        free(copy);
        if (rc) return -1;
      } else if (wksp_frame_writer_data(w, tb->buf, tb->sz)) {
        return -1;
      }
    }
    if (wksp_frame_writer_close(w, &end)) return -1;
    if (record) {
      fr->off = off;
      fr->end = end;
    } else if (fr->off != off || fr->end != end) {
      fprintf(stderr, "frame %d: offsets %" PRIu64 "..%" PRIu64 ", first run %" PRIu64 "..%" PRIu64 "\n", f, off,
              end, fr->off, fr->end);
      return -1;
    }
    if (f && fr->off != sc->frames[f - 1].end) return -1;
  }
  return 0;
}

static inline int frame_read_check(wksp_frame_reader_t *r, const tframe_t *fr, uint8_t *scratch) {
  uint64_t off, end;
  if (wksp_frame_reader_open(r, fr->style, &off) || off != fr->off) return -1;
  for (int b = 0; b < fr->nbuf; b++) {
    const tbuf_t *tb = &fr->bufs[b];
    int rc = tb->is_meta ? wksp_frame_reader_meta(r, scratch, tb->sz)
                         : wksp_frame_reader_data(r, scratch, tb->sz);
    if (rc) return -1;
    if (memcmp(scratch, tb->buf, tb->sz)) {
      fprintf(stderr, "frame at %" PRIu64 " buffer %d (%zu bytes) differs\n", fr->off, b,
              tb->sz);
      return -1;
    }
    memset(scratch, 0x5a, tb->sz); /* the reader must not rely on the caller's buffer */
  }
  if (wksp_frame_reader_close(r, &end) || end != fr->end) return -1;
  return 0;
}

static inline int script_read(wksp_frame_reader_t *r, const tscript_t *sc) {
  uint8_t *scratch = malloc(4u << 20);
  int rc = 0;
  for (int f = 0; !rc && f < sc->nframe; f++) rc = frame_read_check(r, &sc->frames[f], scratch);
  free(scratch);
  if (rc) fprintf(stderr, "read: %s\n", wksp_errmsg());
  return rc;
}

/* ---- plumbing: memfd, pipes, threads ------------------------------------ */

static inline int memfd_with(const void *p, size_t n) {
  int fd = memfd_create("frame-test", 0);
  if (fd < 0 || ftl_write_all(fd, p, n) || lseek(fd, 0, SEEK_SET) != 0) return -1;
  return fd;
}

typedef struct {
  int fd;
  tscript_t *sc;
  int rc;
  ftl_buf_t got;        /* collector */
} job_t;

static inline void *job_write_script(void *arg) {
  job_t *j = arg;
  wksp_frame_writer_t *w = NULL;
  uint64_t sz;
  j->rc = wksp_frame_writer_init_fd(&w, j->fd) || script_write(w, j->sc, 0) ||
          wksp_frame_writer_fini(w, &sz);
  close(j->fd);
  return NULL;
}

static inline void *job_collect(void *arg) {
  job_t *j = arg;
  uint8_t tmp[65536];
  for (;;) {
    ssize_t k = read(j->fd, tmp, sizeof tmp);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    ftl_buf_append(&j->got, tmp, (size_t)k);
  }
  close(j->fd);
  return NULL;
}

/* ---- EINTR and short reads/writes on pipes ------------------------------ */

static volatile sig_atomic_t g_alarms;
static inline void on_alarm(int sig) {
  (void)sig;
  g_alarms++;
}

/* The side in this thread is interrupted by SIGALRM every 200 us (no
 * SA_RESTART): writev/read return short counts or fail with EINTR. */
static inline void interrupted_pipe(int writer_in_main) {
  tscript_t sc = script_new(g_seed ^ 0x51, 24u << 20);
  ftl_buf_t ref = { 0 };
  wksp_frame_writer_t *w;
  CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &ref));
  CHECK(!script_write(w, &sc, 1));
  CHECK_OK(wksp_frame_writer_fini(w, NULL));

  struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* the helper thread inherits the block */
  int p[2];
  CHECK(!pipe(p));
  pthread_t t;
  job_t wj = { .fd = p[1], .sc = &sc }, col = { .fd = p[0] };
  if (writer_in_main) CHECK(!pthread_create(&t, NULL, job_collect, &col));
  else CHECK(!pthread_create(&t, NULL, job_write_script, &wj));
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  g_alarms = 0;
  struct itimerval it = { .it_interval = { 0, 200 }, .it_value = { 0, 200 } };
  setitimer(ITIMER_REAL, &it, NULL);
  int rc;
  wksp_frame_reader_t *r;
  if (writer_in_main) {
    rc = wksp_frame_writer_init_fd(&w, p[1]) || script_write(w, &sc, 0) ||
         wksp_frame_writer_fini(w, NULL);
    close(p[1]);
  } else {
    rc = wksp_frame_reader_init_fd(&r, p[0]) || script_read(r, &sc);
    wksp_frame_reader_fini(r);
    close(p[0]);
  }
  struct itimerval off = { 0 };
  setitimer(ITIMER_REAL, &off, NULL);
  pthread_join(t, NULL);
  signal(SIGALRM, SIG_DFL);
  CHECK(!rc);
  fprintf(stderr, "interrupted_pipe(writer_in_main=%d): %d signals\n", writer_in_main, (int)g_alarms);
  if (writer_in_main) {
    CHECK_EQ(col.got.sz, ref.sz);
    CHECK(!memcmp(col.got.p, ref.p, ref.sz));
  } else {
    CHECK(!wj.rc);
  }
  free(col.got.p);
  free(ref.p);
  script_free(&sc);
}

#endif
