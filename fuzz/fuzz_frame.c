/* libFuzzer target for the frame reader (memory mode).
 *
 * Input layout (so the fuzzer explores buffer sizes and styles, not only the
 * frame bytes):
 *   byte 0        bits 0-5: number of operations n (0..63);
 *                 bit 6: style of the first frame (0 RAW, 1 LZ4)
 *   n x 4 bytes   operation: op byte, then a u24 LE argument
 *                   op & 3 == 0  meta buffer of (arg % 65537) bytes
 *                   op & 3 == 1  data buffer of (arg & 0x3fffff) bytes
 *                   op & 3 == 2  close the frame, open one of style (op >> 2) & 1
 *                   op & 3 == 3  close, seek to offset arg, open as above
 *   the rest      the checkpoint bytes given to wksp_frame_reader_init_mem
 *
 * Checked properties: no crash, overread or leak (sanitizers); every failure
 * is INVAL/FAIL/CORRUPT with a message; a failed reader stays failed; RAW
 * buffers equal the input bytes; and every buffer decoded successfully,
 * re-encoded with the writer and read back, comes out unchanged.
 *
 * Speed: the buffers (up to 16 MiB per input) are carved from one arena
 * kept across inputs, not malloc'd: under ASan every large malloc maps,
 * poisons and faults in fresh memory, which cost more than the decoding.
 * The arena is poisoned except for the live buffers, each followed by a
 * poisoned gap, so ASan still reports any access past a buffer's end or
 * after the input is done, as it would with malloc. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <wksp/frame.h>

#include "../tests/lib/frame_testlib.h"

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

enum {
  MAX_BUFS = 64,
  BUDGET = 16 << 20,
  DATA_MAX = 0x3fffff, /* largest data buffer */
  GAP = 64,            /* poisoned bytes after every arena buffer */
  ARENA_SZ = (BUDGET + DATA_MAX + (MAX_BUFS + 2) * (GAP + 8) + 4095) & ~4095 /* page multiple */
};

/* The arena: buffers are handed out in order and all given back at once. */
static struct {
  uint8_t *base;
  size_t used;
} arena;

static void arena_start(void) {
  if (!arena.base) {
    if (!(arena.base = aligned_alloc(4096, ARENA_SZ))) abort();
    ASAN_POISON_MEMORY_REGION(arena.base, ARENA_SZ);
  }
  arena.used = 0;
}

/* Gives every buffer back: poisons what the input used (only that: the
 * rest is still poisoned, and poisoning 20 MiB per input would cost more
 * than the input). */
static void arena_end(void) { ASAN_POISON_MEMORY_REGION(arena.base, arena.used); }

/* sz bytes (8-aligned start, then a poisoned gap): fits by construction. */
static uint8_t *arena_get(size_t sz) {
  size_t at = (arena.used + 7) & ~(size_t)7;
  if (at + sz + GAP > ARENA_SZ) abort();
  arena.used = at + sz + GAP;
  ASAN_UNPOISON_MEMORY_REGION(arena.base + at, sz);
  return arena.base + at;
}

typedef struct {
  int frame;     /* index of the frame it belongs to */
  int style;
  int is_meta;
  size_t sz;
  uint8_t *p;
} fbuf_t;

static uint32_t u24(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16; }

/* Re-encodes the decoded buffers frame by frame, reads them back and
 * compares. */
static void roundtrip(const fbuf_t *b, int n) {
  static ftl_buf_t o; /* kept across inputs: its capacity only grows */
  o.sz = 0;
  wksp_frame_writer_t *w;
  if (wksp_frame_writer_init_sink(&w, ftl_sink, &o)) abort();
  for (int i = 0; i < n; i++) {
    if ((i == 0 || b[i].frame != b[i - 1].frame) && wksp_frame_writer_open(w, b[i].style, NULL)) abort();
    int rc = b[i].is_meta ? wksp_frame_writer_meta(w, b[i].p, b[i].sz) : wksp_frame_writer_data(w, b[i].p, b[i].sz);
    if (rc) abort();
    if ((i == n - 1 || b[i + 1].frame != b[i].frame) && wksp_frame_writer_close(w, NULL)) abort();
  }
  uint64_t sz;
  if (wksp_frame_writer_fini(w, &sz) || sz != o.sz) abort();
  wksp_frame_reader_t *r;
  if (wksp_frame_reader_init_mem(&r, o.p, o.sz)) abort();
  size_t largest = 0;
  for (int i = 0; i < n; i++) largest = b[i].sz > largest ? b[i].sz : largest;
  uint8_t *t = arena_get(largest);
  for (int i = 0; i < n; i++) {
    if ((i == 0 || b[i].frame != b[i - 1].frame) && wksp_frame_reader_open(r, b[i].style, NULL)) abort();
    if (wksp_frame_reader_data(r, t, b[i].sz) || memcmp(t, b[i].p, b[i].sz)) abort();
    if ((i == n - 1 || b[i + 1].frame != b[i].frame) && wksp_frame_reader_close(r, NULL)) abort();
  }
  if (wksp_frame_reader_offset(r) != o.sz) abort();
  wksp_frame_reader_fini(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t nops = data[0] & 63;
  int style = data[0] & 64 ? WKSP_FRAME_LZ4 : WKSP_FRAME_RAW;
  if (size < 1 + 4 * nops) return 0;
  const uint8_t *ops = data + 1, *ckpt = data + 1 + 4 * nops;
  size_t checkpt_sz = size - 1 - 4 * nops;

  wksp_frame_reader_t *r;
  if (wksp_frame_reader_init_mem(&r, ckpt, checkpt_sz)) abort();
  arena_start();
  fbuf_t bufs[MAX_BUFS];
  int nbuf = 0, frame = 0, failed = 0;
  size_t budget = BUDGET;
  uint64_t at;
  if (wksp_frame_reader_open(r, style, &at) || at != 0) abort();
  for (size_t i = 0; i < nops && !failed; i++) {
    int op = ops[4 * i];
    uint32_t arg = u24(ops + 4 * i + 1);
    int rc;
    if ((op & 3) <= 1) {
      int is_meta = (op & 3) == 0;
      size_t sz = is_meta ? arg % 65537 : arg & 0x3fffff;
      if (sz > budget) break;
      budget -= sz;
      uint8_t *p = arena_get(sz);
      uint64_t before = wksp_frame_reader_offset(r);
      rc = is_meta ? wksp_frame_reader_meta(r, p, sz) : wksp_frame_reader_data(r, p, sz);
      if (!rc) {
        uint64_t after = wksp_frame_reader_offset(r);
        if (after < before || after > checkpt_sz) abort();
        if (style == WKSP_FRAME_RAW && (after - before != sz || memcmp(p, ckpt + before, sz))) abort();
        bufs[nbuf++] = (fbuf_t){ .frame = frame, .style = style, .is_meta = is_meta, .sz = sz, .p = p };
      }
    } else {
      rc = wksp_frame_reader_close(r, NULL);
      if (!rc && (op & 3) == 3) rc = wksp_frame_reader_seek(r, arg);
      style = (op >> 2) & 1 ? WKSP_FRAME_LZ4 : WKSP_FRAME_RAW;
      frame++;
      if (!rc) rc = wksp_frame_reader_open(r, style, NULL);
    }
    if (rc) {
      if (rc != WKSP_ERR_FAIL && rc != WKSP_ERR_CORRUPT) abort();
      if (!wksp_errmsg()[0]) abort();
      failed = rc;
    }
  }
  if (failed) { /* a failed reader stays failed */
    uint8_t t[4];
    if (wksp_frame_reader_meta(r, t, 1) != failed || wksp_frame_reader_open(r, 1, NULL) != failed) abort();
  }
  wksp_frame_reader_fini(r);
  if (nbuf) roundtrip(bufs, nbuf);
  arena_end();
  return 0;
}
