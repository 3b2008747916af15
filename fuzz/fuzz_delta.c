/* libFuzzer target: the delta / index reader (docs/FORMAT.md 13.2) and the
 * chain restore.  A fixed small sealed base is made once per process, from
 * a workspace filled deterministically (fuzz_base below), so that the
 * corpus's deltas (fuzz/corpus/delta/, made by this file built with
 * -DFUZZ_DELTA_GEN, see its end) link to it.
 *
 * Each input is a memory file: read as a delta or index (metadata, then
 * every piece); restored as base + input (wksp_restore_chain); for one
 * input in 2 (by fuzz_hash) the footer's sums are recomputed first, so
 * that mutations reach the structure rules behind the digests.
 *
 * Checked beyond memory safety: the target verifies after every restore; a
 * failed restore leaves it as it was (every check comes before the lock),
 * or empty with a message saying it was reset. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/checkpt/delta_private.h"
#include <wksp/checkpt.h>
#include <wksp/wksp.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { PART_MAX = 64, DATA_MAX = 1 << 20 };

/* The base's workspace: four allocations of text, made the same way in
 * every process. */
static void fuzz_base_fill(wksp_t *w) {
  static const uint64_t sz[4] = {1000, 70000, 150000, 3000};
  for (int i = 0; i < 4; i++) {
    uint64_t g, lo, hi;
    if (wksp_alloc_at_least(w, 1, sz[i], 1 + (uint64_t)i, &g, &lo, &hi)) abort();
    uint8_t *p = wksp_laddr(w, lo);
    for (uint64_t k = 0; k < hi - lo; k++) p[k] = (uint8_t)("slot leader vote bank tx\n"[(k * 7 + (uint64_t)i) % 25]);
  }
}

static char dir[64], base[96], in[96];

static void cleanup(void) {
  char ix[128];
  snprintf(ix, sizeof ix, "%s%s", base, DELTA_INDEX_SUFFIX);
  unlink(ix);
  unlink(in);
  unlink(base);
  rmdir(dir);
}

/* Once: the workspace, its sealed checkpoint (the chain's base). */
static wksp_t *fuzz_base(wksp_t **src) {
  static wksp_t *w;
  if (!w) {
    snprintf(dir, sizeof dir, "/tmp/wksp-fuzz-delta.XXXXXX");
    if (!mkdtemp(dir)) abort();
    snprintf(base, sizeof base, "%s/base", dir);
    snprintf(in, sizeof in, "%s/in", dir);
    atexit(cleanup);
    uint64_t fp = wksp_footprint(PART_MAX, DATA_MAX);
    void *mem = aligned_alloc(4096, (fp + 4095) & ~4095ull);
    if (!mem || wksp_new(mem, "src", 3, PART_MAX, DATA_MAX, &w)) abort();
    fuzz_base_fill(w);
    if (wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1})) abort();
  }
  *src = w;
  return fuzz_target("fuzz", PART_MAX, DATA_MAX);
}

/* The footer's sums recomputed from the frames its offsets name, when they
 * lie inside the input. */
static void reseal(uint8_t *b, size_t sz) {
  if (sz < DELTA_HDR_SZ + DELTA_FTR_SZ) return;
  delta_ftr_t f;
  uint8_t *fb = b + sz - DELTA_FTR_SZ;
  wksp_private_delta_ftr_decode(&f, fb);
  uint64_t ends[6] = {f.table_off, f.pieces_off, f.index_off, f.bitmap_off, f.ftab_off, sz - DELTA_FTR_SZ};
  uint64_t at = DELTA_HDR_SZ, meta = wksp_private_delta_frame_hash(b, DELTA_HDR_SZ, 0), piece = 0;
  for (int k = 0; k < 6; k++) {
    if (ends[k] < at || ends[k] > sz - DELTA_FTR_SZ) return;
    if (k == 2) { /* the piece frames, by the frame table when it fits */
      uint64_t C = f.changed_cnt, ft = f.ftab_off;
      if (C > sz / 8 || ft > sz - DELTA_FTR_SZ || 8 * (C + 1) > sz - DELTA_FTR_SZ - ft) return;
      for (uint64_t j = 0; j < C; j++) {
        uint64_t o = checkpt_ld64(b + ft + 8 * j), e = checkpt_ld64(b + ft + 8 * j + 8);
        if (o > e || e > sz) return;
        piece += wksp_private_delta_frame_hash(b + o, e - o, o);
      }
    } else {
      meta += wksp_private_delta_frame_hash(b + at, ends[k] - at, at);
    }
    at = ends[k];
  }
  f.meta_digest = meta;
  f.piece_digest = piece;
  wksp_private_delta_ftr_encode(fb, &f);
}

static void write_in(const uint8_t *b, size_t sz) {
  int fd = open(in, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) abort();
  fuzz_pwrite_all(fd, b, sz, 0);
  close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wksp_t *src, *t = fuzz_base(&src);
  uint8_t *b = malloc(size + 1);
  if (!b) abort();
  memcpy(b, data, size);
  if (fuzz_hash(data, size) & 1) reseal(b, size);
  /* the reader alone */
  checkpt_input_t mi = checkpt_input_mem(b, size, "fuzz");
  delta_file_t df;
  if (!wksp_private_delta_open(&df, &mi)) {
    wksp_private_delta_pieces_check(&df, &mi, 1 + (uint32_t)(fuzz_hash(data, size) >> 8 & 1));
    wksp_private_delta_fini(&df);
  }
  /* the chain: untouched, reset with a note, or restored and consistent */
  write_in(b, size);
  wksp_reset(t, 1);
  uint64_t g;
  if (wksp_alloc(t, 1, 100, 9, &g)) abort();
  const char *chain[2] = {base, in};
  int rc = wksp_restore_chain(t, chain, 2, &(wksp_restore_opts_t){.seed = 1});
  if (wksp_verify(t)) abort();
  uint64_t tag = 0;
  if (rc && !strstr(wksp_errmsg(), "(target reset to empty)") && (wksp_tag(t, g, &tag) || tag != 9)) abort();
  free(b);
  return 0;
}

#ifdef FUZZ_DELTA_GEN
/* The seed files: deltas of the base (none, one and many pieces changed;
 * v2 and v3; an allocation freed; everything freed) and an index.
 *   cc -DFUZZ_DELTA_GEN -Iinclude -Isrc -D_GNU_SOURCE fuzz/fuzz_delta.c lib/libwksp.a -llz4 -pthread
 *   ./a.out fuzz/corpus/delta */
static void gen(wksp_t *w, const char *out, const char *name, const char *since, int style) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", out, name);
  unlink(p);
  if (wksp_checkpt_delta(w, p, since, &(wksp_checkpt_opts_t){.style = style}, NULL)) {
    fprintf(stderr, "%s: %s\n", p, wksp_errmsg());
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  wksp_t *w;
  fuzz_base(&w);
  size_t n = 0;
  wksp_part_t p[8];
  gen(w, argv[1], "none-v3", base, 3);
  if (wksp_part_list(w, p, 8, &n)) return 1;
  uint8_t *b = wksp_laddr(w, p[1].gaddr_lo);
  b[5] ^= 1;
  gen(w, argv[1], "one-v2", base, 2);
  gen(w, argv[1], "one-v3", base, 3);
  for (uint64_t k = 0; k < 200000 && k < p[2].gaddr_hi - p[2].gaddr_lo; k += 4096)
    ((uint8_t *)wksp_laddr(w, p[2].gaddr_lo))[k] ^= 0x20;
  gen(w, argv[1], "many-v3", base, 3);
  wksp_free(w, p[0].gaddr_lo);
  gen(w, argv[1], "freed-v3", base, 3);
  wksp_reset(w, 3);
  gen(w, argv[1], "empty-v3", base, 3);
  char ip[512], op[512], buf[65536];
  snprintf(ip, sizeof ip, "%s.wkspidx", base);
  snprintf(op, sizeof op, "%s/index", argv[1]);
  if (wksp_checkpt_index(base, 1)) return 1;
  FILE *fi = fopen(ip, "rb"), *fo = fopen(op, "wb");
  size_t k;
  while (fi && fo && (k = fread(buf, 1, sizeof buf, fi)) > 0) fwrite(buf, 1, k, fo);
  return !fi || !fo || fclose(fi) || fclose(fo);
}
#endif
