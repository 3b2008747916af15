/* The frame reader (src/frame/reader.c): round trips of random frame
 * scripts through every writer mode (memory, sink, fd file, pipe) and
 * reader mode (memory, fd file, pipe), many small buffers, the history
 * growing, seeks after direct reads, a file that shrinks, misuse, corrupt
 * input and EINTR / short reads on pipes. */
#include "../lib/frame_script.h"

/* ---- round trips -------------------------------------------------------- */


static void roundtrip_one(uint64_t seed) {
  tscript_t sc = script_new(seed, 12u << 20);
  uint8_t *mem = NULL;
  ftl_buf_t sink = { 0 };
  int fd = -1;
  wksp_frame_writer_t *w = NULL;
  wksp_frame_reader_t *r = NULL;
  uint64_t sz = 0;

  /* memory writer: the reference bytes of this script */
  size_t cap = sc.total + sc.total / 200 + 1024 * 64;
  mem = malloc(cap);
  CHECK_OK(wksp_frame_writer_init_mem(&w, mem, cap));
  CHECK(!script_write(w, &sc, 1));
  CHECK_OK(wksp_frame_writer_fini(w, &sz));
  CHECK_EQ(sz, sc.frames[sc.nframe - 1].end);

  /* sink and fd writers produce the same bytes */
  CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &sink));
  CHECK(!script_write(w, &sc, 0));
  CHECK_OK(wksp_frame_writer_fini(w, NULL));
  CHECK_EQ(sink.sz, sz);
  CHECK(!memcmp(sink.p, mem, sz));
  fd = memfd_create("frame-w", 0);
  CHECK(fd >= 0);
  CHECK_OK(wksp_frame_writer_init_fd(&w, fd));
  CHECK(!script_write(w, &sc, 0));
  CHECK_OK(wksp_frame_writer_fini(w, NULL));
  CHECK_EQ((uint64_t)lseek(fd, 0, SEEK_CUR), sz);
  CHECK_EQ(pread(fd, sink.p, sz, 0), (ssize_t)sz);
  CHECK(!memcmp(sink.p, mem, sz));

  /* memory reader; fd reader on the file the fd writer wrote */
  CHECK_OK(wksp_frame_reader_init_mem(&r, mem, sz));
  CHECK(!script_read(r, &sc));
  CHECK_EQ(wksp_frame_reader_offset(r), sz);
  wksp_frame_reader_fini(r);
  CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
  CHECK_OK(wksp_frame_reader_init_fd(&r, fd));
  CHECK(!script_read(r, &sc));
  wksp_frame_reader_fini(r);
  /* pread reader on the same file (the fd's offset is not used) */
  CHECK_OK(wksp_private_frame_reader_init_pread(&r, fd, 0, sz));
  CHECK(!script_read(r, &sc));
  CHECK_EQ(wksp_frame_reader_offset(r), sz);
  wksp_frame_reader_fini(r);

  /* memory -> stream: the bytes fed into a pipe in odd pieces */
  int p[2];
  pthread_t t;
  CHECK(!pipe(p));
  ftl_feed_t feed = { .fd = p[1], .p = mem, .n = sz, .piece = 100000, .seed = 77 };
  CHECK(!pthread_create(&t, NULL, ftl_feed_main, &feed));
  CHECK_OK(wksp_frame_reader_init_fd(&r, p[0]));
  int rrc = script_read(r, &sc);
  wksp_frame_reader_fini(r);
  close(p[0]); /* unblocks the feeder if the read failed */
  pthread_join(t, NULL);
  CHECK(!rrc);
  CHECK(!feed.rc);

  /* stream -> stream: a writer thread on a pipe, the reader on its end */
  CHECK(!pipe(p));
  job_t wj = { .fd = p[1], .sc = &sc };
  CHECK(!pthread_create(&t, NULL, job_write_script, &wj));
  CHECK_OK(wksp_frame_reader_init_fd(&r, p[0]));
  rrc = script_read(r, &sc);
  wksp_frame_reader_fini(r);
  close(p[0]);
  pthread_join(t, NULL);
  CHECK(!rrc);
  CHECK(!wj.rc);

  /* stream -> memory: writer thread on a pipe, collected, read from memory */
  CHECK(!pipe(p));
  job_t wj2 = { .fd = p[1], .sc = &sc };
  job_t col = { .fd = p[0] };
  pthread_t t2;
  CHECK(!pthread_create(&t, NULL, job_write_script, &wj2));
  CHECK(!pthread_create(&t2, NULL, job_collect, &col));
  pthread_join(t, NULL);
  pthread_join(t2, NULL);
  CHECK(!wj2.rc);
  CHECK_EQ(col.got.sz, sz);
  CHECK(!memcmp(col.got.p, mem, sz));
  CHECK_OK(wksp_frame_reader_init_mem(&r, col.got.p, col.got.sz));
  CHECK(!script_read(r, &sc));
  wksp_frame_reader_fini(r);
  free(col.got.p);

  /* random access: frames in a shuffled order, memory, file, pread (with
   * the frame's end as span for every other frame) */
  for (int mode = 0; mode < 3; mode++) {
    if (mode == 1) CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    if (mode == 1) CHECK_OK(wksp_frame_reader_init_fd(&r, fd));
    else if (mode == 2) CHECK_OK(wksp_private_frame_reader_init_pread(&r, fd, 0, sz));
    else CHECK_OK(wksp_frame_reader_init_mem(&r, mem, sz));
    uint8_t *scratch = malloc(4u << 20);
    uint64_t s = seed ^ 0xabc;
    int bad = 0;
    for (int i = 0; i < 2 * sc.nframe && !bad; i++) {
      const tframe_t *fr = &sc.frames[ftl_rng(&s) % (uint64_t)sc.nframe];
      bad = wksp_frame_reader_seek(r, fr->off);
      if (i & 1) wksp_private_frame_reader_span(r, fr->end);
      bad = bad || frame_read_check(r, fr, scratch);
    }
    free(scratch);
    if (bad) fprintf(stderr, "random access (mode %d): %s\n", mode, wksp_errmsg());
    wksp_frame_reader_fini(r);
    CHECK(!bad);
  }

  close(fd);
  free(sink.p);
  free(mem);
  script_free(&sc);
}

static void test_roundtrip_all_modes(void) {
  uint64_t total = 0;
  for (int i = 0; i < 10; i++) {
    tscript_t sc = script_new(g_seed + (uint64_t)i * 1000003u, 12u << 20);
    total += sc.total;
    script_free(&sc);
  }
  fprintf(stderr, "round trips: 10 scripts, %" PRIu64 " bytes of buffers each way\n", total);
  for (int i = 0; i < 10 && !test_cur_failed; i++) {
    uint64_t seed = g_seed + (uint64_t)i * 1000003u;
    roundtrip_one(seed);
    if (test_cur_failed) fprintf(stderr, "roundtrip failed for script seed %" PRIu64 "\n", seed);
  }
}

/* Many small buffers in one LZ4 frame: the ring wraps many times, the reader's
 * history slides; meta and data alternate. */
static void test_many_small_buffers(void) {
  uint64_t s = g_seed;
  enum { N = 20000 };
  static uint8_t bufs[N][96];
  static size_t szs[N];
  for (int i = 0; i < N; i++) {
    szs[i] = ftl_rng(&s) % 97;
    ftl_fill_text(bufs[i], szs[i], ftl_rng(&s) % 64); /* few distinct contents: long matches */
  }
  ftl_buf_t out = { 0 };
  wksp_frame_writer_t *w;
  CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &out));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL));
  for (int i = 0; i < N; i++)
    CHECK_OK((i & 1) ? wksp_frame_writer_data(w, bufs[i], szs[i]) : wksp_frame_writer_meta(w, bufs[i], szs[i]));
  CHECK_OK(wksp_frame_writer_close(w, NULL));
  CHECK_OK(wksp_frame_writer_fini(w, NULL));
  wksp_frame_reader_t *r;
  CHECK_OK(wksp_frame_reader_init_mem(&r, out.p, out.sz));
  CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_LZ4, NULL));
  uint8_t tmp[96];
  for (int i = 0; i < N; i++) {
    CHECK_OK(wksp_frame_reader_meta(r, tmp, szs[i]));
    CHECK(!memcmp(tmp, bufs[i], szs[i]));
  }
  uint64_t end;
  CHECK_OK(wksp_frame_reader_close(r, &end));
  CHECK_EQ(end, out.sz);
  wksp_frame_reader_fini(r);
  free(out.p);
}

/* The reader's LZ4 history starts small and grows on demand: small reads
 * that outgrow it, a direct read (>= one chunk) while it is still small,
 * small reads whose matches reach back into that direct read, a history
 * that reaches its largest size and slides, and a second frame reusing the
 * grown buffer.  Every buffer must come back exactly. */
static void test_reader_history_growth(void) {
  static const size_t szs[] = {100, 5000, 20000, 70000, 60000, 65535, 30000, 65535, 65535,
                               65535, 1, 200000, 7, 40000, 0, 65535};
  enum { N = sizeof szs / sizeof szs[0], SPLIT = 10 }; /* frame 2 starts at szs[SPLIT] */
  uint8_t *bufs[N], *tmp = malloc(200000);
  CHECK(tmp);
  uint64_t s = g_seed;
  for (int i = 0; i < N; i++) {
    CHECK(bufs[i] = malloc(szs[i] + 1));
    ftl_fill_text(bufs[i], szs[i], ftl_rng(&s) % 4); /* repeats across buffers: long matches */
  }
  ftl_buf_t out = { 0 };
  wksp_frame_writer_t *w;
  CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &out));
  for (int i = 0; i < N; i++) {
    if (i == 0 || i == SPLIT) CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL));
    CHECK_OK(wksp_frame_writer_data(w, bufs[i], szs[i]));
    if (i == SPLIT - 1 || i == N - 1) CHECK_OK(wksp_frame_writer_close(w, NULL));
  }
  CHECK_OK(wksp_frame_writer_fini(w, NULL));
  wksp_frame_reader_t *r;
  CHECK_OK(wksp_frame_reader_init_mem(&r, out.p, out.sz));
  for (int i = 0; i < N; i++) {
    if (i == 0 || i == SPLIT) CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_LZ4, NULL));
    CHECK_OK(wksp_frame_reader_data(r, tmp, szs[i]));
    CHECK(!memcmp(tmp, bufs[i], szs[i]));
    if (i == SPLIT - 1 || i == N - 1) CHECK_OK(wksp_frame_reader_close(r, NULL));
  }
  CHECK_EQ(wksp_frame_reader_offset(r), out.sz);
  wksp_frame_reader_fini(r);
  for (int i = 0; i < N; i++) free(bufs[i]);
  free(tmp);
  free(out.p);
}

/* Seeks on a file reader to arbitrary offsets after buffered and direct
 * (large RAW) reads: the bytes read after each seek are the file's. */
static void seek_after_direct_reads(int pread_mode) {
  enum { N = 3u << 20 };
  uint8_t *file = malloc(N), *buf = malloc(N);
  ftl_fill_random(file, N, 4);
  int fd = memfd_with(file, N);
  CHECK(fd >= 0);
  wksp_frame_reader_t *r;
  if (pread_mode) CHECK_OK(wksp_private_frame_reader_init_pread(&r, fd, 0, N));
  else CHECK_OK(wksp_frame_reader_init_fd(&r, fd));
  uint64_t s = g_seed;
  for (int i = 0; i < 200; i++) {
    uint64_t at = ftl_rng(&s) % N;
    size_t n = (size_t)(ftl_rng(&s) % 4 == 0 ? ftl_rng(&s) % (N - at + 1) : ftl_rng(&s) % 300);
    if (n > N - at) n = (size_t)(N - at);
    CHECK_OK(wksp_frame_reader_seek(r, at));
    CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_RAW, NULL));
    CHECK_OK(wksp_frame_reader_data(r, buf, n));
    CHECK(!memcmp(buf, file + at, n));
    CHECK_OK(wksp_frame_reader_close(r, NULL));
    CHECK_EQ(wksp_frame_reader_offset(r), at + n);
  }
  /* buffered read, large direct read, then a seek back a little */
  for (int i = 0; i < 50; i++) {
    uint64_t at = ftl_rng(&s) % (N / 2), back = 1 + ftl_rng(&s) % 300000;
    CHECK_OK(wksp_frame_reader_seek(r, at));
    CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_RAW, NULL));
    CHECK_OK(wksp_frame_reader_meta(r, buf, 100));
    CHECK_OK(wksp_frame_reader_data(r, buf, 1u << 20));
    CHECK_OK(wksp_frame_reader_close(r, NULL));
    uint64_t to = at + 100 + (1u << 20) - back;
    CHECK_OK(wksp_frame_reader_seek(r, to));
    CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_RAW, NULL));
    CHECK_OK(wksp_frame_reader_meta(r, buf, 100));
    CHECK(!memcmp(buf, file + to, 100));
    CHECK_OK(wksp_frame_reader_close(r, NULL));
  }
  wksp_frame_reader_fini(r);
  close(fd);
  free(file);
  free(buf);
}

static void test_reader_seek_after_direct_reads(void) {
  seek_after_direct_reads(0);
  if (!test_cur_failed) seek_after_direct_reads(1);
}

/* pread mode: a file that shrinks while it is read gives an error saying so
 * (never a crash: nothing is mapped), in the buffered and in the direct
 * read path, RAW and LZ4; reading past the size given at init is truncation
 * as for memory, and the fd's own offset is not used. */
static void test_reader_pread_shrink(void) {
  enum { N = 2u << 20 };
  uint8_t *data = malloc(N), *buf = malloc(N);
  ftl_fill_text(data, N, 9);
  ftl_buf_t out = {0};
  wksp_frame_writer_t *w;
  CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &out));
  uint64_t lz4_off = 0;
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_RAW, NULL));
  CHECK_OK(wksp_frame_writer_data(w, data, N));
  CHECK_OK(wksp_frame_writer_close(w, NULL));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, &lz4_off));
  CHECK_OK(wksp_frame_writer_data(w, data, N));
  CHECK_OK(wksp_frame_writer_close(w, NULL));
  CHECK_OK(wksp_frame_writer_fini(w, NULL));
  /* RAW: a buffered and a direct first read; LZ4 reads whole chunks (the
   * sizes written) */
  const size_t reads[] = {100, 1u << 20, 65536};
  for (int style = WKSP_FRAME_RAW; style <= WKSP_FRAME_LZ4; style++)
    for (int k = style == WKSP_FRAME_RAW ? 0 : 2; k < (style == WKSP_FRAME_RAW ? 2 : 3); k++) {
      uint64_t at = style == WKSP_FRAME_RAW ? 0 : lz4_off;
      int fd = memfd_with(out.p, out.sz);
      CHECK(fd >= 0);
      CHECK_EQ(lseek(fd, 7, SEEK_SET), 7);
      wksp_frame_reader_t *r;
      CHECK_OK(wksp_private_frame_reader_init_pread(&r, fd, 0, out.sz));
      CHECK_OK(wksp_frame_reader_seek(r, at));
      CHECK_OK(wksp_frame_reader_open(r, style, NULL));
      CHECK_OK(wksp_frame_reader_data(r, buf, reads[k]));
      CHECK(!memcmp(buf, data, reads[k]));
      CHECK(!ftruncate(fd, (off_t)(at + 300000)));
      int rc = wksp_frame_reader_data(r, buf, N - reads[k]);
      if (rc != WKSP_ERR_FAIL || !strstr(wksp_errmsg(), "shrank"))
        fprintf(stderr, "style %d read %zu: rc %d: %s\n", style, reads[k], rc, wksp_errmsg());
      CHECK_EQ(rc, WKSP_ERR_FAIL);
      CHECK(strstr(wksp_errmsg(), "shrank"));
      wksp_frame_reader_fini(r);
      /* a size past the file's end at init: the reader reads up to it */
      CHECK_OK(wksp_private_frame_reader_init_pread(&r, fd, at, out.sz));
      CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_RAW, NULL));
      CHECK_ERR(wksp_frame_reader_data(r, buf, 400000), WKSP_ERR_FAIL);
      CHECK(strstr(wksp_errmsg(), "shrank"));
      wksp_frame_reader_fini(r);
      /* the size given at init ends the input, as memory */
      CHECK_OK(wksp_private_frame_reader_init_pread(&r, fd, 1000, 5000));
      CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_RAW, NULL));
      CHECK_OK(wksp_frame_reader_data(r, buf, 4000));
      CHECK(!memcmp(buf, out.p + 1000, 4000));
      CHECK_ERR(wksp_frame_reader_data(r, buf, 1001), WKSP_ERR_FAIL);
      CHECK(strstr(wksp_errmsg(), "truncated"));
      wksp_frame_reader_fini(r);
      CHECK_EQ(lseek(fd, 0, SEEK_CUR), 7);
      close(fd);
    }
  free(out.p);
  free(data);
  free(buf);
}

/* ---- reader failures ---------------------------------------------------- */

/* An LZ4 frame of one buffer of n bytes (text) into out; returns its size. */
static size_t lz4_frame_of(uint8_t *out, size_t cap, const uint8_t *src, size_t n) {
  wksp_frame_writer_t *w;
  uint64_t sz = 0;
  if (wksp_frame_writer_init_mem(&w, out, cap) || wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL) ||
      wksp_frame_writer_data(w, src, n) || wksp_frame_writer_close(w, NULL) ||
      wksp_frame_writer_fini(w, &sz))
    return 0;
  return (size_t)sz;
}

static void test_reader_misuse(void) {
  uint8_t mem[64] = { 0 }, buf[100];
  wksp_frame_reader_t *r;
  CHECK_ERR(wksp_frame_reader_init_mem(NULL, mem, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_reader_init_mem(&r, NULL, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_reader_init_fd(&r, -5), WKSP_ERR_INVAL);
  CHECK_OK(wksp_frame_reader_fini(NULL));
  CHECK_ERR(wksp_frame_reader_meta(NULL, buf, 1), WKSP_ERR_INVAL);
  CHECK_OK(wksp_frame_reader_init_mem(&r, mem, sizeof mem));
  CHECK_ERR(wksp_frame_reader_meta(r, buf, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_reader_close(r, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_reader_open(r, 7, NULL), WKSP_ERR_INVAL);
  CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_DEFAULT, NULL));
  CHECK_ERR(wksp_frame_reader_open(r, WKSP_FRAME_RAW, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_reader_seek(r, 0), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_reader_meta(r, buf, 65537), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_reader_data(r, NULL, 3), WKSP_ERR_INVAL);
  CHECK_OK(wksp_frame_reader_data(r, buf, 64));
  CHECK_OK(wksp_frame_reader_close(r, NULL));
  /* seek: to the end is fine, past it FAIL and the reader is failed */
  CHECK_OK(wksp_frame_reader_seek(r, 64));
  CHECK_ERR(wksp_frame_reader_seek(r, 65), WKSP_ERR_FAIL);
  CHECK(strstr(wksp_errmsg(), "past the end"));
  CHECK_ERR(wksp_frame_reader_open(r, 1, NULL), WKSP_ERR_FAIL);
  CHECK(strstr(wksp_errmsg(), "failed earlier"));
  wksp_frame_reader_fini(r);

  /* pipes cannot seek (UNSUP, reader still usable); EOF is "truncated" */
  int p[2];
  CHECK(!pipe(p));
  CHECK(!ftl_write_all(p[1], mem, 10));
  close(p[1]);
  CHECK_OK(wksp_frame_reader_init_fd(&r, p[0]));
  CHECK_ERR(wksp_frame_reader_seek(r, 0), WKSP_ERR_UNSUP);
  CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_RAW, NULL));
  CHECK_OK(wksp_frame_reader_meta(r, buf, 4));
  CHECK_ERR(wksp_frame_reader_meta(r, buf, 7), WKSP_ERR_FAIL);
  CHECK(strstr(wksp_errmsg(), "truncated at offset 10"));
  wksp_frame_reader_fini(r);
  close(p[0]);

  /* a regular file: seek past its end is FAIL; read errors carry errno */
  int fd = memfd_with(mem, sizeof mem);
  CHECK(fd >= 0);
  CHECK_OK(wksp_frame_reader_init_fd(&r, fd));
  CHECK_OK(wksp_frame_reader_seek(r, 64));
  CHECK_ERR(wksp_frame_reader_seek(r, 1000), WKSP_ERR_FAIL);
  wksp_frame_reader_fini(r);
  close(fd);
  fd = open("/dev/null", O_WRONLY);
  CHECK_OK(wksp_frame_reader_init_fd(&r, fd));
  CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_LZ4, NULL));
  CHECK_ERR(wksp_frame_reader_meta(r, buf, 5), WKSP_ERR_FAIL);
  CHECK_EQ(wksp_errno(), EBADF);
  wksp_frame_reader_fini(r);
  close(fd);
}

static int read_lz4_one(const uint8_t *mem, size_t n, size_t want, uint8_t *dst) {
  wksp_frame_reader_t *r;
  if (wksp_frame_reader_init_mem(&r, mem, n)) return 99;
  int rc = wksp_frame_reader_open(r, WKSP_FRAME_LZ4, NULL);
  if (!rc) rc = wksp_frame_reader_data(r, dst, want);
  wksp_frame_reader_fini(r);
  return rc;
}

static void test_reader_corrupt(void) {
  static uint8_t src[200000], out[220000], dst[200000];
  ftl_fill_text(src, sizeof src, 3);
  size_t n = lz4_frame_of(out, sizeof out, src, 1000);
  CHECK(n > 3);
  CHECK_OK(read_lz4_one(out, n, 1000, dst));
  CHECK(!memcmp(dst, src, 1000));
  /* wrong sizes: block decodes to 1000 bytes */
  CHECK_ERR(read_lz4_one(out, n, 1001, dst), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "fewer bytes") && strstr(wksp_errmsg(), "frame at offset 0"));
  CHECK_ERR(read_lz4_one(out, n, 999, dst), WKSP_ERR_CORRUPT);
  CHECK_ERR(read_lz4_one(out, n, 1, dst), WKSP_ERR_CORRUPT); /* csz > bound(1) = 17 */
  CHECK(strstr(wksp_errmsg(), "block size"));
  /* size field 0 and too large */
  uint8_t bad[8] = { 0, 0, 0, 1, 2, 3, 4, 5 };
  CHECK_ERR(read_lz4_one(bad, sizeof bad, 100, dst), WKSP_ERR_CORRUPT);
  bad[0] = bad[1] = bad[2] = 0xff;
  CHECK_ERR(read_lz4_one(bad, sizeof bad, 65536, dst), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "16777215"));
  /* size field fine but block truncated: FAIL, not CORRUPT */
  CHECK_ERR(read_lz4_one(out, n - 1, 1000, dst), WKSP_ERR_FAIL);
  CHECK(strstr(wksp_errmsg(), "truncated"));
  /* a frame entered in its middle: its second chunk refers to history the
   * reader does not have */
  n = lz4_frame_of(out, sizeof out, src, sizeof src);
  size_t c0 = (size_t)out[0] | (size_t)out[1] << 8 | (size_t)out[2] << 16;
  CHECK_ERR(read_lz4_one(out + 3 + c0, n - 3 - c0, 65536, dst), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "not valid LZ4"));
  CHECK_OK(read_lz4_one(out, n, sizeof src, dst));
  CHECK(!memcmp(dst, src, sizeof src));
}

static void test_reader_eintr(void) { interrupted_pipe(0); }

int main(void) {
  g_seed = test_seed();
  TEST_RUN(test_reader_misuse);
  TEST_RUN(test_reader_corrupt);
  TEST_RUN(test_reader_seek_after_direct_reads);
  TEST_RUN(test_reader_pread_shrink);
  TEST_RUN(test_many_small_buffers);
  TEST_RUN(test_reader_history_growth);
  TEST_RUN(test_roundtrip_all_modes);
  TEST_RUN(test_reader_eintr);
  return test_done();
}
