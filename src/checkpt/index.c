/* What a delta's writer needs of its base (docs/FORMAT.md 13.3): its table,
 * the hash of each of its pieces and its content digest.  A delta has them
 * inside; a sealed checkpoint has them in its sidecar PATH.wkspidx when
 * that is valid (the index layout, keyed by the seal digest), else they
 * are made by decoding it once.  Also the sidecar's writer: wksp_checkpt
 * with opts.index, and wksp_checkpt_index. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta_private.h"
#include "util/err.h"
#include "util/io.h"
#include "../wksp/wksp_private.h"


void wksp_private_delta_base_fini(delta_base_t *b) {
  free(b->parts);
  free(b->pstart);
  free(b->hash);
  memset(b, 0, sizeof *b);
}

/* ---- a checkpoint's hashes, decoded ---------------------------------------------- */

typedef struct {
  const wksp_part_t *parts; /* ascending */
  uint64_t cnt;
  const uint64_t *pstart;
  uint64_t *hash;
} sh_t;

static int sh_piece(void *ctx, const wksp_part_t *p, uint64_t at, const uint8_t *b, uint64_t n, uint32_t slot) {
  (void)slot;
  sh_t *s = ctx;
  uint64_t lo = 0, hi = s->cnt; /* the allocation: parts[lo].gaddr_lo == p->gaddr_lo */
  while (hi - lo > 1) {
    uint64_t m = lo + (hi - lo) / 2;
    if (s->parts[m].gaddr_lo <= p->gaddr_lo) lo = m;
    else hi = m;
  }
  s->hash[s->pstart[lo] + at / DELTA_PIECE] = wksp_private_checkpt_digest_piece(p->gaddr_lo + at, b, n);
  return WKSP_SUCCESS;
}

int wksp_private_delta_scan_hashes(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads,
                                   uint64_t **pstart, uint64_t **hash) {
  const wksp_part_t *parts = s->info.parts;
  uint64_t cnt = s->info.alloc_cnt;
  *hash = NULL;
  int rc = wksp_private_delta_pstart(parts, cnt, pstart);
  if (rc) return rc;
  uint64_t P = (*pstart)[cnt];
  sh_t sh = {parts, cnt, *pstart, *hash = calloc(P + 1, sizeof **hash)};
  if (!sh.hash)
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: %" PRIu64 " piece hashes", in->label, P);
  rc = wksp_private_checkpt_data_pieces(in, s, threads, sh_piece, &sh);
  if (rc) return rc;
  uint64_t d = wksp_private_delta_content_digest(parts, cnt, sh.hash, P);
  if (d != s->seal.digest)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s does not match its seal: content digest %016" PRIx64 ", the seal records %016" PRIx64,
                    in->label, d, s->seal.digest);
  return WKSP_SUCCESS;
}

/* ---- the sidecar ------------------------------------------------------------------- */

static char *index_path(const char *path) {
  char *s = malloc(strlen(path) + sizeof DELTA_INDEX_SUFFIX);
  if (s) sprintf(s, "%s%s", path, DELTA_INDEX_SUFFIX);
  return s;
}

/* The sidecar of a scanned sealed checkpoint, if it is valid: its hashes
 * into b (FROM_INDEX); else b->note says why not. */
static void sidecar_try(delta_base_t *b, const char *path) {
  char *ip = index_path(path);
  checkpt_input_t in;
  delta_file_t df;
  if (!ip) {
    snprintf(b->note, sizeof b->note, "%s%s: no memory", path, DELTA_INDEX_SUFFIX);
    return;
  }
  if (access(ip, F_OK)) {
    snprintf(b->note, sizeof b->note, "%s: missing", ip);
  } else if (wksp_private_checkpt_input_open(&in, ip, -1, ip, 0)) {
    snprintf(b->note, sizeof b->note, "%s", wksp_errmsg());
  } else {
    int rc = checkpt_input_random(&in) ? wksp_private_delta_open(&df, &in)
                                       : wksp_err(WKSP_ERR_INVAL, 0, "%s: not a regular file", ip);
    if (rc) {
      snprintf(b->note, sizeof b->note, "%s: damaged (%s)", ip, wksp_errmsg());
    } else {
      if (df.kind != WKSP_FILE_INDEX)
        snprintf(b->note, sizeof b->note, "%s: not an index file", ip);
      else if (df.f.digest != b->digest)
        snprintf(b->note, sizeof b->note, "%s: stale (digest %016" PRIx64 ", the checkpoint's %016" PRIx64 ")", ip,
                 df.f.digest, b->digest);
      else if (df.h.part_max != b->h.part_max || df.h.data_max != b->h.data_max || df.h.alloc_cnt != b->cnt)
        snprintf(b->note, sizeof b->note, "%s: stale (another geometry)", ip);
      else {
        b->hash = df.hash;
        df.hash = NULL;
        b->from = WKSP_BASE_FROM_INDEX;
      }
      wksp_private_delta_fini(&df);
    }
    wksp_private_checkpt_input_fini(&in);
  }
  free(ip);
}

static int base_of_delta(delta_base_t *b, const checkpt_input_t *in) {
  delta_file_t df;
  int rc = wksp_private_delta_open(&df, in);
  if (rc) return rc;
  if (df.kind == WKSP_FILE_INDEX) {
    wksp_private_delta_fini(&df);
    return wksp_err(WKSP_ERR_INVAL, 0, "%s is an index file, not a checkpoint or delta (name its checkpoint)",
                    in->label);
  }
  b->from = WKSP_BASE_FROM_DELTA;
  b->h = df.h;
  b->digest = df.f.digest;
  b->cnt = df.h.alloc_cnt;
  b->parts = df.parts;
  b->pstart = df.pstart;
  b->hash = df.hash;
  df.parts = NULL;
  df.pstart = df.hash = NULL;
  wksp_private_delta_fini(&df);
  return WKSP_SUCCESS;
}

static int base_of_checkpt(delta_base_t *b, const checkpt_input_t *in, const char *path, uint32_t threads,
                           int decode) {
  checkpt_scan_t s;
  int rc = wksp_private_checkpt_scan(&s, in);
  if (rc) return rc;
  if (s.info.pv.style != 2) {
    rc = wksp_err(WKSP_ERR_INVAL, 0, "%s is a v1 checkpoint, which has no seal: no delta can refer to it", in->label);
  } else if (s.seal.state == WKSP_SEAL_NONE) {
    rc = wksp_err(WKSP_ERR_UNSUP, 0,
                  "%s is not sealed: write it with --verify or --index; a delta needs its base's content digest",
                  in->label);
  } else {
    rc = wksp_private_checkpt_seal_gate(&s.seal, 1, in->label);
  }
  if (rc) goto done;
  b->h = (delta_hdr_t){.seed = s.hdr.seed, .part_max = s.hdr.part_max, .data_max = s.hdr.data_max,
                       .wallclock = s.info.wallclock, .alloc_cnt = s.info.alloc_cnt};
  memcpy(b->h.name, s.hdr.name, CHECKPT_NAME_MAX - 1);
  b->digest = s.seal.digest;
  b->cnt = s.info.alloc_cnt;
  b->parts = malloc((b->cnt + 1) * sizeof *b->parts);
  if (!b->parts) {
    rc = wksp_err(WKSP_ERR_NOMEM, 0, "%s: table", in->label);
    goto done;
  }
  memcpy(b->parts, s.info.parts, b->cnt * sizeof *b->parts);
  rc = wksp_private_delta_pstart(b->parts, b->cnt, &b->pstart);
  if (rc) goto done;
  b->h.piece_cnt = b->pstart[b->cnt];
  if (!decode) sidecar_try(b, path);
  if (!b->hash) {
    uint64_t *ps = NULL;
    b->from = WKSP_BASE_FROM_DECODE;
    rc = wksp_private_delta_scan_hashes(in, &s, threads, &ps, &b->hash);
    free(ps);
  }
done:
  wksp_private_checkpt_scan_fini(&s);
  return rc;
}

int wksp_private_delta_base_load(delta_base_t *b, const char *path, uint32_t threads, int decode) {
  memset(b, 0, sizeof *b);
  checkpt_input_t in;
  int rc = wksp_private_checkpt_input_open(&in, path, -1, path, 0);
  if (rc) return rc;
  struct stat st;
  uint8_t m[8] = {0};
  if (!checkpt_input_random(&in) || in.mem || fstat(in.rfd, &st)) {
    rc = wksp_err(WKSP_ERR_INVAL, 0, "%s: not a regular file (a base is read at random)", path);
    goto done;
  }
  b->dev = (uint64_t)st.st_dev;
  b->ino = (uint64_t)st.st_ino;
  if (in.sz >= 8 && (rc = wksp_private_checkpt_input_read(&in, m, 8, 0))) goto done;
  rc = delta_magic_any(checkpt_ld64(m)) ? base_of_delta(b, &in) : base_of_checkpt(b, &in, path, threads, decode);
done:
  wksp_private_checkpt_input_fini(&in);
  if (rc) wksp_private_delta_base_fini(b);
  return rc;
}

/* ---- writing the sidecar ------------------------------------------------------------- */

/* May the sidecar replace what is at ip?  Nothing there, or an index file.
 * A regular file that cannot be opened or read is FAIL with its errno (an
 * I/O error, not proof that it is something else). */
static int sidecar_target(const char *ip, int *overwrite) {
  struct stat st;
  *overwrite = 0;
  if (lstat(ip, &st)) return errno == ENOENT ? WKSP_SUCCESS : wksp_err(WKSP_ERR_FAIL, errno, "%s: stat", ip);
  uint8_t m[8] = {0};
  long n = -1;
  if (S_ISREG(st.st_mode)) {
    int fd = open(ip, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return wksp_err(WKSP_ERR_FAIL, errno, "%s: open, to see that it is an index file", ip);
    n = wksp_private_read_full(fd, m, 8);
    int e = errno;
    close(fd);
    if (n < 0) return wksp_err(WKSP_ERR_FAIL, e, "%s: read, to see that it is an index file", ip);
  }
  if (n != 8 || checkpt_ld64(m) != INDEX_MAGIC)
    return wksp_err(WKSP_ERR_EXIST, 0, "%s exists and is not a wksp index file; not replaced", ip);
  *overwrite = 1;
  return WKSP_SUCCESS;
}

int wksp_private_delta_index_write(const char *path, const delta_hdr_t *h0, const wksp_part_t *parts,
                                   const uint64_t *hash, uint64_t digest, uint32_t mode) {
  char *ip = index_path(path);
  if (!ip) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: index path", path);
  int ow = 0;
  int rc = sidecar_target(ip, &ow);
  checkpt_pub_t pub;
  if (!rc) rc = wksp_private_checkpt_pub_open(&pub, ip, &(wksp_checkpt_opts_t){.mode = mode, .overwrite = ow});
  if (rc) goto out;
  if (pub.stream) {
    rc = wksp_err(WKSP_ERR_EXIST, 0, "%s is a FIFO or device, not a wksp index file; not replaced", ip);
  } else {
    delta_hdr_t h = *h0;
    h.magic = INDEX_MAGIC;
    h.version = DELTA_VERSION;
    h.piece_style = WKSP_FRAME_RAW;
    h.piece_lg = DELTA_PIECE_LG;
    h.flags = 0;
    h.base_digest = digest;
    h.hint_sz = h.uinfo_sz = 0;
    delta_out_t o = {.fd = pub.fd, .label = ip};
    uint64_t W = delta_bitmap_words(h.piece_cnt);
    uint64_t *bits = calloc(W + 1, sizeof *bits);
    rc = bits ? wksp_private_delta_emit_head(&o, &h, "", "", parts)
              : wksp_err(WKSP_ERR_NOMEM, 0, "%s: bitmap", ip);
    uint64_t pieces_off = o.pos;
    if (!rc)
      rc = wksp_private_delta_emit_tail(&o, &h, hash, bits, NULL, 0, 0, digest, pieces_off,
                                        pieces_off - 24 * h.alloc_cnt);
    free(bits);
    if (!rc) rc = wksp_private_checkpt_pub_commit(&pub);
  }
  wksp_private_checkpt_pub_abort(&pub);
out:
  free(ip);
  return rc;
}

void wksp_private_delta_index_unlink(const char *path) {
  char *ip = index_path(path);
  if (ip) unlink(ip);
  free(ip);
}

int wksp_private_delta_index_of_wksp(wksp_t *w, const wksp_part_t *parts, uint64_t cnt, const uint64_t *hash,
                                     uint64_t digest, int64_t wallclock, const char *path, uint32_t mode) {
  uint64_t *ps = NULL;
  int rc = wksp_private_delta_pstart(parts, cnt, &ps);
  if (!rc) {
    delta_hdr_t h = {.seed = wksp_seed(w), .part_max = wksp_part_max(w), .data_max = wksp_data_max(w),
                     .wallclock = wallclock, .alloc_cnt = cnt, .piece_cnt = ps[cnt]};
    strncpy(h.name, wksp_name(w), CHECKPT_NAME_MAX - 1);
    rc = wksp_private_delta_index_write(path, &h, parts, hash, digest, mode);
  }
  free(ps);
  return rc;
}

int wksp_checkpt_index(const char *path, uint32_t threads) {
  if (!path) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_index: NULL path");
  delta_base_t b;
  int rc = wksp_private_delta_base_load(&b, path, checkpt_threads(threads), 1);
  if (!rc && b.from == WKSP_BASE_FROM_DELTA)
    rc = wksp_err(WKSP_ERR_INVAL, 0, "%s is a delta: it carries its own index", path);
  struct stat st;
  if (!rc && stat(path, &st)) rc = wksp_err(WKSP_ERR_FAIL, errno, "%s: stat", path);
  if (!rc) rc = wksp_private_delta_index_write(path, &b.h, b.parts, b.hash, b.digest, st.st_mode & 07777);
  wksp_private_delta_base_fini(&b);
  return rc ? wksp_err_wrap(rc, "index %s", path) : rc;
}
