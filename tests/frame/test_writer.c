/* The frame writer (src/frame/writer.c): the byte layout, patchable frames,
 * the gather buffer, in-place LZ4 against the reference's copy, regions
 * mode, LZ4 history hand-over, misuse, full memory, I/O errors, iovec
 * overflow and EINTR / short writes on pipes. */
#include "../lib/frame_script.h"

/* ---- byte layout -------------------------------------------------------- */

static void test_layout(void) {
  uint8_t a[200], out[4096];
  for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)i;
  wksp_frame_writer_t *w;
  uint64_t off, end, sz;
  CHECK_OK(wksp_frame_writer_init_mem(&w, out, sizeof out));
  /* RAW: verbatim; empty buffers emit nothing; empty frames are empty */
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_RAW, &off));
  CHECK_EQ(off, 0);
  CHECK_OK(wksp_frame_writer_meta(w, a, 10));
  CHECK_OK(wksp_frame_writer_data(w, NULL, 0));
  CHECK_OK(wksp_frame_writer_data(w, a + 10, 5));
  CHECK_OK(wksp_frame_writer_close(w, &end));
  CHECK_EQ(end, 15);
  CHECK(!memcmp(out, a, 15));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, &off));
  CHECK_OK(wksp_frame_writer_meta(w, a, 0));
  CHECK_OK(wksp_frame_writer_close(w, &end));
  CHECK_EQ(off, 15);
  CHECK_EQ(end, 15);
  /* LZ4: one chunk = u24 size + an LZ4 block that liblz4 decodes */
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, &off));
  CHECK_OK(wksp_frame_writer_meta(w, a, 200));
  CHECK_OK(wksp_frame_writer_close(w, &end));
  CHECK_OK(wksp_frame_writer_fini(w, &sz));
  CHECK_EQ(sz, end);
  size_t csz = (size_t)out[15] | (size_t)out[16] << 8 | (size_t)out[17] << 16;
  CHECK_EQ(end - off, 3 + csz);
  uint8_t dec[200];
  CHECK_EQ(LZ4_decompress_safe((const char *)out + 18, (char *)dec, (int)csz, 200), 200);
  CHECK(!memcmp(dec, a, 200));
}

/* Patchable frames: every chunk a literal-only LZ4 block (sizes 1, 14, 15,
 * 269, 270 around the length-byte steps, and a full chunk), after a meta
 * buffer; liblz4 and our reader decode them, and each buffer's bytes sit
 * verbatim where data_at says. */
static void test_patchable(void) {
  static const size_t sizes[] = {1, 14, 15, 269, 270, 1000, 65536};
  enum { N = sizeof sizes / sizeof sizes[0] };
  static uint8_t src[65536], out[80000 * N], back[65536];
  uint8_t meta[144];
  uint64_t rng = g_seed;
  for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)test_rng(&rng);
  for (size_t i = 0; i < sizeof meta; i++) meta[i] = (uint8_t)test_rng(&rng);
  for (size_t k = 0; k < N; k++) {
    size_t n = sizes[k];
    wksp_frame_writer_t *w;
    uint64_t end, at = 0, m_at = 0;
    CHECK_OK(wksp_frame_writer_init_mem(&w, out, sizeof out));
    CHECK_OK(wksp_private_frame_writer_open_patchable(w, WKSP_FRAME_LZ4, NULL));
    CHECK_OK(wksp_private_frame_writer_data_at(w, meta, sizeof meta, &m_at));
    CHECK_OK(wksp_private_frame_writer_data_at(w, src, n, &at));
    CHECK_OK(wksp_frame_writer_close(w, &end));
    CHECK_OK(wksp_frame_writer_fini(w, NULL));
    CHECK(!memcmp(out + m_at, meta, sizeof meta));
    size_t c0 = m_at + sizeof meta; /* the second chunk's header */
    size_t csz = (size_t)out[c0] | (size_t)out[c0 + 1] << 8 | (size_t)out[c0 + 2] << 16;
    CHECK(at > c0 + 3);
    CHECK_EQ(csz, at - (c0 + 3) + n);
    CHECK_EQ(end, at + n);
    CHECK(!memcmp(out + at, src, n));
    CHECK_EQ(LZ4_decompress_safe((const char *)out + c0 + 3, (char *)back, (int)csz, (int)n), (int)n);
    CHECK(!memcmp(back, src, n));
    wksp_frame_reader_t *r;
    memset(back, 0, n);
    CHECK_OK(wksp_frame_reader_init_mem(&r, out, end));
    CHECK_OK(wksp_frame_reader_open(r, WKSP_FRAME_LZ4, NULL));
    CHECK_OK(wksp_frame_reader_data(r, back, sizeof meta));
    CHECK(!memcmp(back, meta, sizeof meta));
    CHECK_OK(wksp_frame_reader_data(r, back, n));
    CHECK_OK(wksp_frame_reader_close(r, NULL));
    wksp_frame_reader_fini(r);
    CHECK(!memcmp(back, src, n));
  }
  /* RAW: verbatim anyway, at the writer's offset; more than a chunk refused */
  wksp_frame_writer_t *w;
  uint64_t at = 0;
  CHECK_OK(wksp_frame_writer_init_mem(&w, out, sizeof out));
  CHECK_OK(wksp_private_frame_writer_open_patchable(w, WKSP_FRAME_RAW, NULL));
  CHECK_OK(wksp_private_frame_writer_data_at(w, meta, sizeof meta, &at));
  CHECK_EQ(at, 0);
  CHECK_OK(wksp_private_frame_writer_data_at(w, src, 100, &at));
  CHECK_EQ(at, sizeof meta);
  CHECK_ERR(wksp_private_frame_writer_data_at(w, src, 65537, &at), WKSP_ERR_INVAL);
  CHECK_OK(wksp_frame_writer_close(w, NULL));
  CHECK_OK(wksp_frame_writer_fini(w, NULL));
}

/* ---- writer failures ---------------------------------------------------- */

static int failing_sink(void *ctx, const struct iovec *iov, int iovcnt) {
  (void)ctx, (void)iov, (void)iovcnt;
  return EIO;
}

static void test_writer_misuse(void) {
  uint8_t out[1024], a[70000] = { 0 };
  wksp_frame_writer_t *w;
  uint64_t off;
  CHECK_ERR(wksp_frame_writer_init_mem(NULL, out, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_writer_init_mem(&w, NULL, 1), WKSP_ERR_INVAL);
  CHECK(w == NULL);
  CHECK_ERR(wksp_frame_writer_init_fd(&w, -1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_writer_init_sink(&w, NULL, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_writer_open(NULL, 1, NULL), WKSP_ERR_INVAL);
  CHECK_OK(wksp_frame_writer_fini(NULL, NULL));
  CHECK_OK(wksp_frame_writer_init_mem(&w, out, sizeof out));
  /* each misuse is refused and leaves the writer usable */
  CHECK_ERR(wksp_frame_writer_meta(w, a, 1), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "no frame is open"));
  CHECK_ERR(wksp_frame_writer_close(w, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_writer_open(w, 3, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_writer_open(w, -1, NULL), WKSP_ERR_INVAL);
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, &off));
  CHECK_ERR(wksp_frame_writer_open(w, WKSP_FRAME_RAW, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_frame_writer_meta(w, a, 65537), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "65537"));
  CHECK_ERR(wksp_frame_writer_data(w, NULL, 5), WKSP_ERR_INVAL);
  CHECK_OK(wksp_frame_writer_meta(w, a, 65536));
  CHECK_OK(wksp_frame_writer_close(w, NULL));
  /* fini inside a frame: INVAL, freed anyway (ASan/valgrind see leaks) */
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_RAW, NULL));
  CHECK_ERR(wksp_frame_writer_fini(w, NULL), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "never closed"));
}

static void test_writer_mem_full(void) {
  uint8_t out[100], a[1000];
  memset(a, 7, sizeof a);
  wksp_frame_writer_t *w;
  uint64_t sz;
  CHECK_OK(wksp_frame_writer_init_mem(&w, out, sizeof out));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_RAW, NULL));
  CHECK_OK(wksp_frame_writer_meta(w, a, 60));
  CHECK_ERR(wksp_frame_writer_data(w, a, 41), WKSP_ERR_FAIL);
  CHECK(strstr(wksp_errmsg(), "full"));
  /* failed for good */
  CHECK_ERR(wksp_frame_writer_data(w, a, 1), WKSP_ERR_FAIL);
  CHECK(strstr(wksp_errmsg(), "failed earlier"));
  CHECK_ERR(wksp_frame_writer_close(w, NULL), WKSP_ERR_FAIL);
  CHECK_ERR(wksp_frame_writer_open(w, 1, NULL), WKSP_ERR_FAIL);
  CHECK_ERR(wksp_frame_writer_fini(w, &sz), WKSP_ERR_FAIL);
  /* exactly full is fine, also for LZ4 (random data: no room for expansion) */
  CHECK_OK(wksp_frame_writer_init_mem(&w, out, 60));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_RAW, NULL));
  CHECK_OK(wksp_frame_writer_data(w, a, 60));
  CHECK_OK(wksp_frame_writer_close(w, NULL));
  CHECK_OK(wksp_frame_writer_fini(w, &sz));
  CHECK_EQ(sz, 60);
  uint8_t rnd[64];
  ftl_fill_random(rnd, sizeof rnd, 5);
  CHECK_OK(wksp_frame_writer_init_mem(&w, out, 60));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL));
  CHECK_ERR(wksp_frame_writer_meta(w, rnd, 64), WKSP_ERR_FAIL);
  CHECK_ERR(wksp_frame_writer_fini(w, &sz), WKSP_ERR_FAIL);
}

static void test_writer_io_errors(void) {
  static uint8_t big[1 << 20];
  wksp_frame_writer_t *w;
  /* /dev/full: ENOSPC when the frame is delivered */
  int fd = open("/dev/full", O_WRONLY);
  CHECK(fd >= 0);
  CHECK_OK(wksp_frame_writer_init_fd(&w, fd));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_RAW, NULL));
  CHECK_OK(wksp_frame_writer_data(w, big, sizeof big));
  CHECK_ERR(wksp_frame_writer_close(w, NULL), WKSP_ERR_FAIL);
  CHECK_EQ(wksp_errno(), ENOSPC);
  CHECK(strstr(wksp_errmsg(), "offset 0"));
  CHECK_ERR(wksp_frame_writer_fini(w, NULL), WKSP_ERR_FAIL);
  CHECK_EQ(wksp_errno(), ENOSPC); /* a failed writer keeps reporting the cause */
  CHECK(strstr(wksp_errmsg(), "No space left on device"));
  close(fd);
  /* a pipe whose reader is gone: EPIPE (SIGPIPE ignored) */
  int p[2];
  CHECK(!pipe(p));
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  CHECK_OK(wksp_frame_writer_init_fd(&w, p[1]));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL));
  CHECK_OK(wksp_frame_writer_data(w, big, sizeof big)); /* compressed output gathered, flushed as it fills */
  CHECK_ERR(wksp_frame_writer_close(w, NULL), WKSP_ERR_FAIL);
  CHECK_EQ(wksp_errno(), EPIPE);
  wksp_frame_writer_fini(w, NULL);
  close(p[1]);
  /* a failing sink */
  CHECK_OK(wksp_frame_writer_init_sink(&w, failing_sink, NULL));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_RAW, NULL));
  CHECK_OK(wksp_frame_writer_meta(w, big, 10));
  CHECK_ERR(wksp_frame_writer_close(w, NULL), WKSP_ERR_FAIL);
  CHECK_EQ(wksp_errno(), EIO);
  CHECK(strstr(wksp_errmsg(), "sink"));
  wksp_frame_writer_fini(w, NULL);
}

/* More than 1024 referenced data buffers in one RAW frame: the iovec list
 * fills and is delivered early; data and meta order must hold. */
static void test_writer_iov_overflow(void) {
  enum { N = 3000, SZ = 20000 };
  uint8_t *data = malloc((size_t)N * SZ);
  ftl_fill_random(data, (size_t)N * SZ, 9);
  ftl_buf_t out = { 0 };
  wksp_frame_writer_t *w;
  CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &out));
  CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_RAW, NULL));
  for (int i = 0; i < N; i++) {
    uint32_t tag = (uint32_t)i;
    CHECK_OK(wksp_frame_writer_meta(w, &tag, sizeof tag));
    CHECK_OK(wksp_frame_writer_data(w, data + (size_t)i * SZ, SZ));
  }
  CHECK_OK(wksp_frame_writer_close(w, NULL));
  CHECK_OK(wksp_frame_writer_fini(w, NULL));
  CHECK_EQ(out.sz, (size_t)N * (SZ + 4));
  for (int i = 0; i < N; i++) {
    uint32_t tag;
    memcpy(&tag, out.p + (size_t)i * (SZ + 4), 4);
    CHECK_EQ(tag, (uint32_t)i);
    CHECK(!memcmp(out.p + (size_t)i * (SZ + 4) + 4, data + (size_t)i * SZ, SZ));
  }
  free(out.p);
  free(data);
}

/* The writer's gather buffer fills and is delivered many times: copied
 * RAW buffers and compressed LZ4 chunks well past its 256 KiB through a
 * sink (which sees the gather buffer) must give exactly the bytes that
 * memory mode (which never gathers) gives, and read back unchanged. */
static void test_writer_gather_refills(void) {
  enum { N = 60, SZ = 12000, MEM = 4 << 20 }; /* 12000 <= the copy limit: gathered */
  uint8_t *src = malloc((size_t)N * SZ), *mem = malloc(MEM), *back = malloc(SZ);
  CHECK(src && mem && back);
  ftl_fill_random(src, (size_t)N * SZ, g_seed); /* incompressible: LZ4 chunks stay large */
  ftl_buf_t out = { 0 };
  wksp_frame_writer_t *ws, *wm;
  CHECK_OK(wksp_frame_writer_init_sink(&ws, ftl_sink, &out));
  CHECK_OK(wksp_frame_writer_init_mem(&wm, mem, MEM));
  for (int style = WKSP_FRAME_RAW; style <= WKSP_FRAME_LZ4; style++) {
    CHECK_OK(wksp_frame_writer_open(ws, style, NULL));
    CHECK_OK(wksp_frame_writer_open(wm, style, NULL));
    for (int i = 0; i < N; i++) {
      CHECK_OK(wksp_frame_writer_data(ws, src + (size_t)i * SZ, SZ));
      CHECK_OK(wksp_frame_writer_data(wm, src + (size_t)i * SZ, SZ));
    }
    CHECK_OK(wksp_frame_writer_close(ws, NULL));
    CHECK_OK(wksp_frame_writer_close(wm, NULL));
  }
  uint64_t ssz = 0, msz = 0;
  CHECK_OK(wksp_frame_writer_fini(ws, &ssz));
  CHECK_OK(wksp_frame_writer_fini(wm, &msz));
  CHECK_EQ(ssz, msz);
  CHECK_EQ(out.sz, ssz);
  CHECK(ssz > 2 * (uint64_t)N * SZ);
  CHECK(!memcmp(out.p, mem, ssz));
  wksp_frame_reader_t *r;
  CHECK_OK(wksp_frame_reader_init_mem(&r, out.p, out.sz));
  for (int style = WKSP_FRAME_RAW; style <= WKSP_FRAME_LZ4; style++) {
    CHECK_OK(wksp_frame_reader_open(r, style, NULL));
    for (int i = 0; i < N; i++) {
      CHECK_OK(wksp_frame_reader_data(r, back, SZ));
      CHECK(!memcmp(back, src + (size_t)i * SZ, SZ));
    }
    CHECK_OK(wksp_frame_reader_close(r, NULL));
  }
  wksp_frame_reader_fini(r);
  free(out.p);
  free(src);
  free(mem);
  free(back);
}

/* The in-place LZ4 path gives exactly the bytes of the plain ring path (the
 * reference's algorithm) for random scripts and for patterns built to hit
 * every ring position: runs of large buffers after small ones of every
 * size class. */
static int encode_both(tscript_t *sc, ftl_buf_t *fast, ftl_buf_t *exact) {
  wksp_frame_writer_t *w;
  int bad = 0;
  for (int e = 0; e < 2 && !bad; e++) {
    ftl_buf_t *out = e ? exact : fast;
    out->sz = 0;
    if (wksp_frame_writer_init_sink(&w, ftl_sink, out)) return -1;
    wksp_private_frame_writer_exact(w, e);
    bad = script_write(w, sc, e == 0);
    bad = wksp_frame_writer_fini(w, NULL) || bad;
  }
  return bad || fast->sz != exact->sz || memcmp(fast->p, exact->p, fast->sz);
}

static void test_lz4_in_place_identical(void) {
  ftl_buf_t fast = { 0 }, exact = { 0 };
  for (int i = 0; i < 40; i++) {
    tscript_t sc = script_new(g_seed * 31 + (uint64_t)i, 6u << 20);
    for (int f = 0; f < sc.nframe; f++) sc.frames[f].style = WKSP_FRAME_LZ4;
    int bad = encode_both(&sc, &fast, &exact);
    script_free(&sc);
    if (bad) fprintf(stderr, "script %d: in-place and ring outputs differ\n", i);
    CHECK(!bad);
  }
  /* one LZ4 frame: a small buffer of size s0, then large buffers whose sizes
   * put chunk boundaries at many ring offsets; text so that matches cross
   * every boundary */
  uint64_t s = g_seed;
  enum { BIG = 4u << 20 };
  uint8_t *big = malloc(BIG);
  for (int i = 0; i < 80; i++) {
    /* text, or random bytes repeating with a period just under 64 KiB: the
     * matches then reach the far end of LZ4's window, where a wrong
     * dictionary size or content would show */
    if (i % 2 == 0) {
      ftl_fill_text(big, BIG, 99 + (uint64_t)i);
    } else {
      size_t period = 65535 - (size_t)(ftl_rng(&s) % 4);
      ftl_fill_random(big, period, (uint64_t)i);
      for (size_t k = period; k < BIG; k++) big[k] = big[k - period];
    }
    tscript_t sc = { 0 };
    sc.nframe = 1;
    sc.frames = calloc(1, sizeof *sc.frames);
    tframe_t *fr = &sc.frames[0];
    fr->style = WKSP_FRAME_LZ4;
    fr->bufs = calloc(8, sizeof *fr->bufs);
    size_t sizes[8] = { (size_t)(ftl_rng(&s) % 70000), 65536 * 2 + (size_t)(ftl_rng(&s) % 200000),
                        (size_t)(ftl_rng(&s) % 66000), 65536 + (size_t)(ftl_rng(&s) % 3),
                        (size_t)(ftl_rng(&s) % 9) * 65536 + (size_t)(ftl_rng(&s) % 65537), 24,
                        (size_t)(ftl_rng(&s) % 1000000), 131072 };
    size_t at = 0; /* consecutive slices: the period continues across buffers */
    for (int b = 0; b < 8; b++) {
      tbuf_t *tb = &fr->bufs[fr->nbuf++];
      tb->sz = sizes[b];
      tb->is_meta = b == 5;
      tb->buf = malloc(tb->sz + 1);
      memcpy(tb->buf, big + at, tb->sz);
      at += tb->sz;
    }
    int bad = encode_both(&sc, &fast, &exact);
    script_free(&sc);
    if (bad) fprintf(stderr, "ring pattern %d: in-place and ring outputs differ\n", i);
    CHECK(!bad);
  }
  free(big);
  free(fast.p);
  free(exact.p);
}

/* Regions mode (the parallel checkpoint's output): the regions handed back,
 * concatenated, are exactly the sink writer's bytes for random scripts of
 * every style, with regions of the minimum size and of random sizes; a
 * failing or too small supply of regions fails the writer with FAIL. */
typedef struct {
  ftl_buf_t out;    /* bytes of the regions handed back */
  uint8_t *cur;     /* region being filled */
  uint64_t s;       /* rng for the region sizes (0: always the minimum) */
  int fail_at;      /* call number that fails (0 never) */
  int calls;
  size_t small;     /* non-zero: hand out regions of this (too small) size */
} regions_t;

static int regions_fn(void *ctx, uint8_t *full, size_t used, uint8_t **mem, size_t *sz) {
  regions_t *r = ctx;
  if (full != r->cur) return EFAULT; /* the writer hands back the region it was given */
  if (full && ftl_buf_append(&r->out, full, used)) return ENOMEM;
  free(r->cur);
  r->cur = NULL;
  if (++r->calls == r->fail_at) return ENOSPC;
  size_t n = FRAME_CHUNK_HDR + FRAME_CSZ_MAX;
  if (r->s) n += (size_t)(ftl_rng(&r->s) % 300000);
  if (r->small) n = r->small;
  r->cur = malloc(n);
  *mem = r->cur;
  *sz = n;
  return 0;
}

static void test_writer_regions(void) {
  ftl_buf_t ref = { 0 };
  for (int i = 0; i < 24; i++) {
    tscript_t sc = script_new(g_seed * 17 + (uint64_t)i, 4u << 20);
    wksp_frame_writer_t *w;
    ref.sz = 0;
    CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &ref));
    CHECK(!script_write(w, &sc, 1));
    CHECK_OK(wksp_frame_writer_fini(w, NULL));
    regions_t r = { .s = i % 2 ? g_seed + (uint64_t)i : 0 };
    CHECK_OK(wksp_private_frame_writer_init_regions(&w, regions_fn, &r));
    CHECK(!script_write(w, &sc, 0));
    uint64_t total = 0;
    CHECK_OK(wksp_frame_writer_fini(w, &total));
    if (r.cur) ftl_buf_append(&r.out, r.cur, (size_t)(total - r.out.sz));
    CHECK_EQ(total, ref.sz);
    CHECK(r.out.sz == ref.sz && !memcmp(r.out.p, ref.p, ref.sz));
    free(r.cur);
    free(r.out.p);
    script_free(&sc);
  }
  free(ref.p);

  /* failures: the supply fails (its errno), or offers too little room */
  uint8_t *text = malloc(1u << 20);
  ftl_fill_text(text, 1u << 20, 5);
  for (int k = 0; k < 2; k++) {
    regions_t r = { .fail_at = k ? 0 : 3, .small = k ? 100 : 0 };
    wksp_frame_writer_t *w;
    CHECK_OK(wksp_private_frame_writer_init_regions(&w, regions_fn, &r));
    CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL));
    int rc = wksp_frame_writer_data(w, text, 1u << 20);
    CHECK_ERR(rc, WKSP_ERR_FAIL);
    CHECK_EQ(wksp_errno(), k ? EINVAL : ENOSPC);
    CHECK(strstr(wksp_errmsg(), "output region"));
    CHECK_ERR(wksp_frame_writer_close(w, NULL), WKSP_ERR_FAIL);
    CHECK_ERR(wksp_frame_writer_fini(w, NULL), WKSP_ERR_FAIL);
    free(r.cur);
    free(r.out.p);
  }
  free(text);
}

/* LZ4 history hand-over (frame_private.h): a second writer that starts in
 * the middle of an LZ4 frame, with the ring cursor of that point and a
 * warm-up on the bytes before it, continues the first writer's frame byte
 * for byte whenever the two history states are equal there.  With 256 KiB
 * of warm-up they nearly always are; with none (empty history against a
 * full one) never.  Also: feeding one buffer in several data_cont calls
 * gives the same bytes as one call. */
typedef struct {
  const uint8_t *p;
  size_t sz;
  int meta;
} hbuf_t;

typedef struct {
  int i;
  size_t o; /* buffer i, offset o (a chunk boundary) */
} hpos_t;

/* Feeds buffers [from, to) to w, as history only when warm. */
static int handover_feed(wksp_frame_writer_t *w, const hbuf_t *b, hpos_t from, hpos_t to,
                         int warm, int cont0) {
  for (int i = from.i; i <= to.i; i++) {
    size_t lo = i == from.i ? from.o : 0, hi = i == to.i ? to.o : b[i].sz;
    if (hi <= lo) continue; /* an empty data buffer has no chunks: nothing to feed */
    int cont = lo > 0 && (i != from.i || cont0);
    int rc = b[i].meta ? wksp_frame_writer_meta(w, b[i].p, b[i].sz)
             : warm     ? wksp_private_frame_writer_warm(w, b[i].p + lo, hi - lo, cont)
                        : wksp_private_frame_writer_data_cont(w, b[i].p + lo, hi - lo, cont);
    if (rc) return rc;
  }
  return 0;
}

static size_t handover_cursor(const hbuf_t *b, hpos_t to) {
  size_t cur = 0;
  for (int i = 0; i <= to.i; i++) {
    size_t hi = i == to.i ? to.o : b[i].sz;
    for (size_t o = 0; o < hi; o += FRAME_CHUNK)
      cur = frame_ring_next(cur, hi - o < FRAME_CHUNK ? hi - o : FRAME_CHUNK);
  }
  return cur;
}

static void test_lz4_handover(void) {
  uint64_t s = g_seed * 7 + 1;
  enum { NB = 24, META = 3 };
  hbuf_t b[NB + 1];
  wksp_private_frame_lz4_state_t *sa = malloc(sizeof *sa), *sb = malloc(sizeof *sb);
  ftl_buf_t ref = {0}, out = {0};
  int tries = 0, hits = 0;
  for (int iter = 0; iter < 12; iter++) {
    for (int i = 0; i < NB; i++) {
      size_t sz = i < META ? 24 : (ftl_rng(&s) % 3 ? 65536 * (1 + ftl_rng(&s) % 8) : 0) +
                                    ftl_rng(&s) % 70000;
      uint8_t *p = malloc(sz + 1);
      if (i >= META && ftl_rng(&s) % 4) ftl_fill_text(p, sz, ftl_rng(&s));
      else fill_mixed(p, sz, &s);
      b[i] = (hbuf_t){p, sz, i < META};
    }
    hpos_t end = {NB - 1, b[NB - 1].sz}, start = {0, 0};
    wksp_frame_writer_t *w;
    ref.sz = 0;
    CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &ref));
    CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL));
    for (int i = 0; i < NB; i++)
      CHECK_OK(b[i].meta ? wksp_frame_writer_meta(w, b[i].p, b[i].sz)
                         : wksp_frame_writer_data(w, b[i].p, b[i].sz));
    CHECK_OK(wksp_frame_writer_close(w, NULL));
    CHECK_OK(wksp_frame_writer_fini(w, NULL));
    for (int k = 0; k < 6; k++) {
      hpos_t at = {META + (int)(ftl_rng(&s) % (NB - META)), 0};
      if (b[at.i].sz) at.o = ftl_rng(&s) % ((b[at.i].sz + FRAME_CHUNK - 1) / FRAME_CHUNK) * FRAME_CHUNK;
      /* the first writer, stopped at `at` and continued */
      out.sz = 0;
      CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &out));
      CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL));
      CHECK_OK(handover_feed(w, b, start, at, 0, 0));
      CHECK_OK(wksp_private_frame_writer_lz4_state(w, sa));
      uint64_t off_at = wksp_frame_writer_offset(w);
      CHECK_OK(handover_feed(w, b, at, end, 0, 1));
      CHECK_OK(wksp_frame_writer_close(w, NULL));
      CHECK_OK(wksp_frame_writer_fini(w, NULL));
      CHECK(out.sz == ref.sz && !memcmp(out.p, ref.p, ref.sz));
      for (int warm = 0; warm < 2; warm++) {
        /* the second writer: warm-up from up to 256 KiB before `at` */
        hpos_t from = at;
        size_t back = warm ? 256 * 1024 : 0;
        while (back) {
          if (from.o) {
            size_t d = back < from.o ? back : from.o;
            from.o -= d;
            back -= d;
          } else if (from.i > META) {
            from.i--;
            from.o = b[from.i].sz;
          } else {
            break;
          }
        }
        from.o = from.o / FRAME_CHUNK * FRAME_CHUNK;
        out.sz = 0;
        CHECK_OK(wksp_frame_writer_init_sink(&w, ftl_sink, &out));
        CHECK_OK(wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL));
        wksp_private_frame_writer_set_cursor(w, handover_cursor(b, from));
        CHECK_OK(handover_feed(w, b, from, at, 1, 0));
        CHECK_EQ(wksp_frame_writer_offset(w), 0);
        CHECK_OK(wksp_private_frame_writer_lz4_state(w, sb));
        int warmed = from.i != at.i || from.o != at.o;
        CHECK_OK(handover_feed(w, b, at, end, 0, warmed));
        CHECK_OK(wksp_frame_writer_close(w, NULL));
        CHECK_OK(wksp_frame_writer_fini(w, NULL));
        int same = !memcmp(sa, sb, sizeof *sa);
        if (same) CHECK(out.sz == ref.sz - off_at && !memcmp(out.p, ref.p + off_at, out.sz));
        if (!warm) CHECK(!same); /* A's history holds at least the meta buffers */
        if (warm) tries++, hits += same;
      }
    }
    for (int i = 0; i < NB; i++) free((void *)b[i].p);
  }
  fprintf(stderr, "hand-over: states equal at %d of %d split points\n", hits, tries);
  CHECK(hits * 4 >= tries * 3); /* misses: splits with little data before them */
  free(sa);
  free(sb);
  free(ref.p);
  free(out.p);
}

static void test_writer_eintr(void) { interrupted_pipe(1); }

/* ---- a source file (wksp_private_frame_writer_source) ----------------------- */

/* A file of sz bytes of pattern seed, open read-write, unlinked. */
static int source_file(size_t sz, uint64_t seed) {
  char p[] = "/tmp/wksp-test-src-XXXXXX";
  int fd = mkstemp(p);
  if (fd < 0) return -1;
  unlink(p);
  uint8_t *b = malloc(sz);
  ftl_fill_random(b, sz, seed);
  int ok = b && write(fd, b, sz) == (ssize_t)sz;
  free(b);
  if (!ok) close(fd);
  return ok ? fd : -1;
}

/* Frames over the mapping m of sz bytes: large buffers in it (referenced),
 * small ones (gathered), a large one outside it, an LZ4 frame.  With src
 * >= 0 the writer is told that m holds file src's bytes (src_off 4096). */
static int source_frames(int out, const uint8_t *m, size_t sz, int src, const uint8_t *other) {
  wksp_frame_writer_t *w;
  int rc = wksp_frame_writer_init_fd(&w, out);
  if (rc) return rc;
  if (src >= 0) wksp_private_frame_writer_source(w, src, m + 4096, sz - 4096, 4096);
  uint32_t tag = 7;
  if (!rc) rc = wksp_frame_writer_open(w, WKSP_FRAME_RAW, NULL);
  for (size_t at = 4096, k = 0; !rc && at + 300000 <= sz; at += 300000, k++) {
    rc = wksp_frame_writer_meta(w, &tag, sizeof tag);
    /* referenced; gathered (away from the straddling and LZ4 buffers below) */
    if (!rc) rc = k % 3 ? wksp_frame_writer_data(w, m + at, 200000) : wksp_frame_writer_data(w, m + at + 250000, 1000);
    if (!rc && k == 2) rc = wksp_frame_writer_data(w, other, 100000);    /* referenced, not the file's */
  }
  if (!rc) rc = wksp_frame_writer_data(w, m, 50000); /* straddles the source's start: from memory */
  if (!rc) rc = wksp_frame_writer_close(w, NULL);
  if (!rc) rc = wksp_frame_writer_open(w, WKSP_FRAME_LZ4, NULL);
  if (!rc) rc = wksp_frame_writer_data(w, m + 8192, 200000);
  if (!rc) rc = wksp_frame_writer_close(w, NULL);
  int rc2 = wksp_frame_writer_fini(w, NULL);
  return rc ? rc : rc2;
}

/* Reads a pipe to its end into got (the reader of a pipe output). */
typedef struct {
  int fd;
  ftl_buf_t got;
} drain_t;

static void *drain_main(void *arg) {
  drain_t *d = arg;
  uint8_t b[65536];
  for (ssize_t n; (n = read(d->fd, b, sizeof b)) > 0;) ftl_buf_append(&d->got, b, (size_t)n);
  return NULL;
}

static uint8_t *slurp_fd(int fd, size_t *sz) {
  off_t n = lseek(fd, 0, SEEK_END);
  uint8_t *b = n > 0 ? malloc((size_t)n) : NULL;
  if (b && pread(fd, b, (size_t)n, 0) != n) b = (free(b), NULL);
  *sz = b ? (size_t)n : 0;
  return b;
}

/* RAW data inside the source's range comes from the source file (large
 * buffers by sendfile, small ones read into the gather buffer), everything
 * else from memory: shown with a source file that differs from the
 * mapping (Y's bytes must appear where the mapping holds X's), to a
 * regular file (sendfile), to a pipe (the bounce buffer) and to an
 * O_APPEND output (sendfile says EINVAL: the bounce buffer too). */
static void test_writer_source(void) {
  enum { SZ = 3 << 20 };
  int x = source_file(SZ, 1), y = source_file(SZ, 2);
  CHECK(x >= 0 && y >= 0);
  uint8_t *mx = mmap(NULL, SZ, PROT_READ, MAP_SHARED, x, 0), *my = mmap(NULL, SZ, PROT_READ, MAP_SHARED, y, 0);
  CHECK(mx != MAP_FAILED && my != MAP_FAILED);
  static uint8_t other[100000];
  ftl_fill_random(other, sizeof other, 3);
  FILE *f[4];
  for (int i = 0; i < 4; i++) CHECK((f[i] = tmpfile()));
  /* 0: mapping X, told its file is Y; 1: Y's bytes written from Y's mapping where 0 used Y's file */
  CHECK_OK(source_frames(fileno(f[0]), mx, SZ, y, other));
  size_t n0, n1, n2, n3;
  uint8_t *b0 = slurp_fd(fileno(f[0]), &n0);
  /* The expected bytes: referenced in-range buffers are Y's, the rest X's.
   * Built from a mapping of a file holding exactly that mix. */
  uint8_t *mix = malloc(SZ);
  CHECK(mix);
  memcpy(mix, mx, SZ);
  for (size_t at = 4096, k = 0; at + 300000 <= SZ; at += 300000, k++)
    if (k % 3) memcpy(mix + at, my + at, 200000);
    else memcpy(mix + at + 250000, my + at + 250000, 1000);
  CHECK_OK(source_frames(fileno(f[1]), mix, SZ, -1, other));
  uint8_t *b1 = slurp_fd(fileno(f[1]), &n1);
  CHECK(b0 && b1 && n0 == n1 && !memcmp(b0, b1, n0));
  /* without a source: X's bytes throughout; with an O_APPEND output: as to a regular file */
  CHECK_OK(source_frames(fileno(f[2]), mx, SZ, -1, other));
  uint8_t *b2 = slurp_fd(fileno(f[2]), &n2);
  char lp[64];
  snprintf(lp, sizeof lp, "/proc/self/fd/%d", fileno(f[3]));
  int app = open(lp, O_WRONLY | O_APPEND);
  CHECK(app >= 0);
  CHECK_OK(source_frames(app, mx, SZ, y, other));
  close(app);
  uint8_t *b3 = slurp_fd(fileno(f[3]), &n3);
  CHECK(b2 && b3 && n2 == n3 && n2 == n0 && !memcmp(b1, b3, n2));
  CHECK(memcmp(b0, b2, n0)); /* the two sources do differ in the output */
  /* a pipe output: the source file's bytes through the bounce buffer (Y's, as by sendfile) */
  int p[2];
  CHECK(!pipe(p));
  drain_t dr = {.fd = p[0]};
  pthread_t th;
  CHECK(!pthread_create(&th, NULL, drain_main, &dr));
  CHECK_OK(source_frames(p[1], mx, SZ, y, other));
  close(p[1]);
  pthread_join(th, NULL);
  close(p[0]);
  CHECK(dr.got.sz == n1 && !memcmp(dr.got.p, b1, n1));
  free(dr.got.p);
  free(b0), free(b1), free(b2), free(b3), free(mix);
  for (int i = 0; i < 4; i++) fclose(f[i]);
  munmap(mx, SZ), munmap(my, SZ);
  close(x), close(y);
}

int main(void) {
  g_seed = test_seed();
  TEST_RUN(test_layout);
  TEST_RUN(test_patchable);
  TEST_RUN(test_writer_misuse);
  TEST_RUN(test_writer_mem_full);
  TEST_RUN(test_writer_io_errors);
  TEST_RUN(test_writer_iov_overflow);
  TEST_RUN(test_writer_gather_refills);
  TEST_RUN(test_lz4_in_place_identical);
  TEST_RUN(test_lz4_handover);
  TEST_RUN(test_writer_regions);
  TEST_RUN(test_writer_eintr);
  TEST_RUN(test_writer_source);
  return test_done();
}
