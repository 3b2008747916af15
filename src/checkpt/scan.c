/* Whole-structure validation of a random-access v2 checkpoint (docs/FORMAT.md
 * 4.2, 4.3), stricter than the reference: frames must be back to back (as
 * every writer must produce them, and as the reference's streaming reader
 * needs), allocations must be ascending inside a cgroup and non-overlapping
 * overall, every count must agree and stay within the limits of checkpt_private.h.
 * Nothing here decodes allocation contents; files are read with pread
 * (one frame reader, its buffer reused from frame to frame). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "checkpt_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include <wksp/frame.h>

void wksp_private_checkpt_scan_fini(checkpt_scan_t *s) {
  free(s->info.parts);
  free(s->info.cgroups);
  free(s->info.priv_);
  free(s->cg_next);
  free(s->cg_first);
  free(s->file_parts);
  free(s->v1_data_off);
  memset(s, 0, sizeof *s);
}

/* ---- v2 --------------------------------------------------------------------- */

/* A cgroup frame as the appendix describes it. */
typedef struct {
  uint64_t off, cnt, next; /* start, allocations, where the next frame starts */
} cg_t;

typedef struct {
  checkpt_scan_t *s;
  const checkpt_input_t *in;
  uint64_t sz;
  const char *what;
  int fsc;
  wksp_frame_reader_t *r;
} v2_t;

/* A frame-layer failure while scanning means the bytes are bad (running
 * out of bytes inside a file is truncation): CORRUPT; but a read error
 * (FAIL with an errno) stays FAIL. */
static int rd_fail(const v2_t *v, int rc, const char *where) {
  return wksp_private_checkpt_read_fail(v->r, 0, rc, v->what, where);
}

static int rd_cmd(wksp_frame_reader_t *r, checkpt_cmd_t *c) {
  uint8_t b[CHECKPT_CMD_SZ];
  int rc = wksp_frame_reader_meta(r, b, sizeof b);
  if (!rc) wksp_private_checkpt_cmd_decode(c, b);
  return rc;
}

/* Opens a frame of the compressed style at off and reads one command. */
static int frame_cmd_at(v2_t *v, uint64_t off, checkpt_cmd_t *c, const char *where) {
  int rc = wksp_frame_reader_seek(v->r, off);
  if (!rc) rc = wksp_frame_reader_open(v->r, v->fsc, NULL);
  if (!rc) rc = rd_cmd(v->r, c);
  return rc ? rd_fail(v, rc, where) : WKSP_SUCCESS;
}

/* Header (its bytes already read: head, so the reader starts after it)
 * and info frame. */
static int v2_head(v2_t *v, const uint8_t head[CHECKPT_HDR_SZ], uint64_t *info_end) {
  checkpt_scan_t *s = v->s;
  uint8_t info[CHECKPT_INFO_SZ];
  int rc = wksp_private_checkpt_preview_v2(head, CHECKPT_HDR_SZ, &s->info.pv, v->what);
  if (rc) return rc;
  wksp_private_checkpt_hdr_decode(&s->hdr, head);
  v->fsc = s->hdr.frame_style;
  rc = wksp_frame_reader_seek(v->r, CHECKPT_HDR_SZ); /* a RAW frame: nothing but its bytes */
  if (!rc) rc = wksp_frame_reader_open(v->r, v->fsc, NULL);
  if (!rc) rc = wksp_frame_reader_meta(v->r, info, sizeof info);
  if (rc) return rd_fail(v, rc, "info frame");
  checkpt_info_t I;
  wksp_private_checkpt_info_decode(&I, info);
  uint64_t blob_sz = 0;
  rc = wksp_private_checkpt_info_check(&I, &blob_sz, v->what);
  if (rc) return rc;
  uint8_t *blob = malloc(blob_sz);
  if (!blob) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: info strings", v->what);
  rc = wksp_frame_reader_data(v->r, blob, blob_sz);
  if (!rc) rc = wksp_frame_reader_close(v->r, info_end);
  if (rc) rc = rd_fail(v, rc, "info strings");
  if (!rc) rc = wksp_private_checkpt_info_blob_check(&I, blob, v->what);
  if (!rc) {
    const char *str[CHECKPT_S_CNT];
    uint64_t len[CHECKPT_S_CNT], at = 0;
    for (int k = 0; k < CHECKPT_S_CNT; k++) {
      str[k] = (const char *)blob + at;
      len[k] = I.sz[k] - 1;
      at += I.sz[k];
    }
    rc = wksp_private_checkpt_info_strings(s, str, len);
  }
  free(blob);
  if (rc) return rc;
  wksp_checkpt_info_t *o = &s->info;
  o->mode = I.mode;
  o->wallclock = I.wallclock;
  o->app_id = I.app_id;
  o->thread_id = I.thread_id;
  o->host_id = I.host_id;
  o->cpu_id = I.cpu_id;
  o->group_id = I.group_id;
  o->tid = I.tid;
  o->user_id = I.user_id;
  return WKSP_SUCCESS;
}

/* Grows the cgroup table to hold n entries. */
static int cg_reserve(v2_t *v, cg_t **cg, uint64_t *cap, uint64_t n) {
  if (n <= *cap) return WKSP_SUCCESS;
  uint64_t c = *cap ? 2 * *cap : 64;
  while (c < n) c *= 2;
  cg_t *p = realloc(*cg, c * sizeof *p);
  if (!p) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: cgroup table", v->what);
  *cg = p;
  *cap = c;
  return WKSP_SUCCESS;
}

/* Walks volumes -> appendix chain and fills cg[] (file order). */
static int v2_volumes(v2_t *v, uint64_t info_end, cg_t **cg_out, uint64_t *cg_cnt) {
  checkpt_scan_t *s = v->s;
  const checkpt_ftr_t *f = &s->ftr;
  uint64_t ftr_off = v->sz - CHECKPT_FTR_SZ, V = f->frame_off;
  if (V < info_end || V >= ftr_off)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: footer frame_off %" PRIu64 " outside [%" PRIu64 ",%" PRIu64 ")",
                    v->what, V, info_end, ftr_off);
  checkpt_cmd_t c;
  uint64_t end;
  int rc = frame_cmd_at(v, V, &c, "volumes frame");
  if (!rc && !checkpt_cmd_is_volumes(&c))
    rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: frame at %" PRIu64 " is not a volumes command", v->what, V);
  if (!rc) rc = wksp_frame_reader_close(v->r, &end);
  if (rc) return rc;
  if (end != ftr_off)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: volumes frame ends at %" PRIu64 ", the footer is at %" PRIu64,
                    v->what, end, ftr_off);
  cg_t *cg = NULL;
  uint64_t cap = 0, n = 0, hi = V, A = c.b;
  uint64_t alloc_rem = f->alloc_cnt, cgroup_rem = f->cgroup_cnt, volume_rem = f->volume_cnt;
  uint64_t *arr = malloc(16 * CHECKPT_CGROUP_MAX);
  if (!arr) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: appendix", v->what);
  while (!rc && A) {
    if (!volume_rem || A < info_end || A >= hi) {
      rc = wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: appendix offset %" PRIu64 " invalid (range [%" PRIu64 ",%" PRIu64 "), %" PRIu64
                    " volumes left)",
                    v->what, A, info_end, hi, volume_rem);
      break;
    }
    rc = frame_cmd_at(v, A, &c, "appendix frame");
    if (rc) break;
    uint64_t C = c.a;
    if (!checkpt_cmd_is_appendix(&c) || C > CHECKPT_CGROUP_MAX || C > cgroup_rem) {
      rc = wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: bad appendix command at %" PRIu64 " (cgroup count %" PRIu64 ", %" PRIu64
                    " left, max %" PRIu64 ")",
                    v->what, A, C, cgroup_rem, (uint64_t)CHECKPT_CGROUP_MAX);
      break;
    }
    uint8_t *raw = (uint8_t *)arr;
    /* Two buffers: in an LZ4 frame each is chunked on its own. */
    rc = wksp_frame_reader_data(v->r, raw, 8 * C);
    if (!rc) rc = wksp_frame_reader_data(v->r, raw + 8 * C, 8 * C);
    if (!rc) rc = wksp_frame_reader_close(v->r, &end);
    if (rc) {
      rc = rd_fail(v, rc, "appendix arrays");
      break;
    }
    if (end != hi) {
      rc = wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: appendix frame at %" PRIu64 " ends at %" PRIu64 ", expected %" PRIu64, v->what, A,
                    end, hi);
      break;
    }
    /* This volume's cgroups go in front of the later volumes' ones. */
    rc = cg_reserve(v, &cg, &cap, n + C);
    if (rc) break;
    if (n) memmove(cg + C, cg, n * sizeof *cg);
    n += C;
    uint64_t next = A;
    for (uint64_t i = C; !rc && i-- > 0;) {
      uint64_t off = checkpt_ld64(raw + 8 * i), cnt = checkpt_ld64(raw + 8 * (C + i));
      /* Every command takes at least 4 bytes (LZ4: 3-byte size + a block)
       * and 24 in RAW: a count the frame cannot hold is rejected before
       * any table is sized by it. */
      uint64_t min_cmd = v->fsc == WKSP_FRAME_RAW ? CHECKPT_CMD_SZ : 4;
      if (off >= next || cnt > alloc_rem || cnt >= (next - off) / min_cmd)
        rc = wksp_err(WKSP_ERR_CORRUPT, 0,
                      "%s: appendix at %" PRIu64 ": cgroup %" PRIu64 " offset %" PRIu64 " / count %" PRIu64
                      " invalid",
                      v->what, A, i, off, cnt);
      alloc_rem -= rc ? 0 : cnt;
      cg[i] = (cg_t){.off = off, .cnt = cnt, .next = next};
      next = off;
    }
    if (rc) break;
    uint64_t first = C ? cg[0].off : A, prev = c.b;
    /* Back to back: the first volume starts right after the info frame,
     * a later one right after the previous appendix frame (checked when
     * that appendix's end is compared with its `hi`). */
    if (prev ? prev >= first : first != info_end) {
      rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: volume at %" PRIu64 " does not follow %s at %" PRIu64, v->what,
                    first, prev ? "the previous appendix" : "the info frame", (prev ? prev : info_end));
      break;
    }
    cgroup_rem -= C;
    volume_rem--;
    hi = first;
    A = prev;
  }
  free(arr);
  if (!rc && hi != info_end)
    rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: %" PRIu64 " bytes between the info frame and the volumes",
                  v->what, (hi - info_end));
  if (!rc && (alloc_rem || cgroup_rem || volume_rem))
    rc = wksp_err(WKSP_ERR_CORRUPT, 0,
                  "%s: footer counts disagree with the appendices (%" PRIu64 " allocations, %" PRIu64
                  " cgroups, "
                  "%" PRIu64 " volumes unaccounted for)",
                  v->what, alloc_rem, cgroup_rem, volume_rem);
  if (rc) {
    free(cg);
    return rc;
  }
  *cg_out = cg;
  *cg_cnt = n;
  return WKSP_SUCCESS;
}

/* Reads every cgroup's allocation list; RAW frames must also end exactly
 * where the next frame starts (LZ4 ones are checked when decoded). */
static int v2_cgroups(v2_t *v, const cg_t *cg, uint64_t n) {
  checkpt_scan_t *s = v->s;
  uint64_t src_lo = checkpt_gaddr_lo(s->hdr.part_max), src_hi = src_lo + s->hdr.data_max;
  uint64_t total = s->ftr.alloc_cnt;
  s->file_parts = malloc((total ? total : 1) * sizeof *s->file_parts);
  s->cg_first = malloc((n + 1) * sizeof *s->cg_first);
  s->cg_next = malloc((n ? n : 1) * sizeof *s->cg_next);
  s->info.cgroups = calloc(n ? n : 1, sizeof *s->info.cgroups);
  if (!s->file_parts || !s->cg_first || !s->cg_next || !s->info.cgroups)
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: tables for %" PRIu64 " allocations", v->what, total);
  uint64_t k = 0;
  for (uint64_t g = 0; g < n; g++) {
    s->cg_first[g] = k;
    s->cg_next[g] = cg[g].next;
    uint64_t at = cg[g].off, data = 0, prev_hi = 0;
    int rc = wksp_frame_reader_seek(v->r, at);
    if (!rc) rc = wksp_frame_reader_open(v->r, v->fsc, NULL);
    if (rc) return rd_fail(v, rc, "cgroup frame");
    for (uint64_t i = 0; i <= cg[g].cnt; i++) {
      checkpt_cmd_t c;
      rc = rd_cmd(v->r, &c);
      if (rc) return rd_fail(v, rc, "cgroup commands");
      uint64_t coff = at + CHECKPT_CMD_SZ * i; /* exact for RAW, the frame for LZ4 */
      if (i == cg[g].cnt) {
        if (!checkpt_cmd_is_data(&c))
          return wksp_err(WKSP_ERR_CORRUPT, 0,
                          "%s: cgroup frame at %" PRIu64 ": %" PRIu64 " allocations then no data command",
                          v->what, at, cg[g].cnt);
        break;
      }
      rc = wksp_private_checkpt_meta_check(&c, src_lo, src_hi, coff, v->what);
      if (rc) return rc;
      if (c.a < prev_hi)
        return wksp_err(WKSP_ERR_CORRUPT, 0,
                        "%s: cgroup frame at %" PRIu64 ": allocation [%" PRIu64 ",%" PRIu64
                        ") not above the previous",
                        v->what, at, c.a, c.b);
      prev_hi = c.b;
      data += c.b - c.a;
      s->file_parts[k++] = (wksp_part_t){.gaddr_lo = c.a, .gaddr_hi = c.b, .tag = c.tag};
    }
    uint64_t usz = CHECKPT_CMD_SZ * (cg[g].cnt + 1) + data;
    if (v->fsc == WKSP_FRAME_RAW && usz != cg[g].next - at)
      return wksp_err(WKSP_ERR_CORRUPT, 0,
                      "%s: RAW cgroup frame at %" PRIu64 " holds %" PRIu64 " bytes but spans %" PRIu64,
                      v->what, at, usz, (cg[g].next - at));
    rc = wksp_frame_reader_close(v->r, NULL); /* leave the frame (its data is not read) */
    if (rc) return rd_fail(v, rc, "cgroup frame");
    s->info.cgroups[g] = (wksp_checkpt_cgroup_t){
        .off = at, .end = cg[g].next, .alloc_cnt = cg[g].cnt, .data_sz = usz};
  }
  s->cg_first[n] = k;
  return WKSP_SUCCESS;
}

/* The next frame, at the reader's position (seeked, no frame open),
 * read through to its end as it lies in the file: cgroup frames through
 * their allocation bytes (a chunk at a time into buf, WKSP_FRAME_CHUNK_MAX
 * bytes, which reads LZ4 chunks as written), appendices through their
 * arrays.  *volumes: it was the volumes frame.  A failure is the reader's
 * (truncation among them) or, for a command no writer makes, CORRUPT. */
static int walk_frame(v2_t *v, uint8_t *buf, int *volumes) {
  uint64_t max = v->s->hdr.data_max, *sz = NULL, n = 0, cap = 0;
  checkpt_cmd_t c;
  int rc = wksp_frame_reader_open(v->r, v->fsc, NULL);
  if (!rc) rc = rd_cmd(v->r, &c);
  *volumes = !rc && checkpt_cmd_is_volumes(&c);
  if (!rc && checkpt_cmd_is_appendix(&c)) {
    if (c.a > CHECKPT_CGROUP_MAX) return WKSP_ERR_CORRUPT;
    rc = wksp_frame_reader_data(v->r, buf, 8 * c.a);
    if (!rc) rc = wksp_frame_reader_data(v->r, buf, 8 * c.a);
  }
  while (!rc && (checkpt_cmd_is_meta(&c) || checkpt_cmd_is_data(&c))) {
    if (checkpt_cmd_is_data(&c)) break;
    if (c.a >= c.b || c.b - c.a > max || n == v->s->hdr.part_max) rc = WKSP_ERR_CORRUPT;
    if (!rc && n == cap) {
      uint64_t *p = realloc(sz, (cap = cap ? 2 * cap : 64) * sizeof *p);
      if (p) sz = p;
      else rc = WKSP_ERR_NOMEM;
    }
    if (!rc) sz[n++] = c.b - c.a;
    if (!rc) rc = rd_cmd(v->r, &c);
  }
  for (uint64_t k = 0; !rc && k < n; k++)
    for (uint64_t left = sz[k]; !rc && left;) {
      uint64_t piece = left < WKSP_FRAME_CHUNK_MAX ? left : WKSP_FRAME_CHUNK_MAX;
      rc = wksp_frame_reader_data(v->r, buf, piece);
      left -= piece;
    }
  free(sz);
  if (!rc) rc = wksp_frame_reader_close(v->r, NULL);
  return rc;
}

/* The footer check failed with rc: when the frames, walked forward from
 * the info frame as a stream reader reads them, run past the end of the
 * input (or leave no room for the footer), the file is truncated, and that
 * is the error to report, with where its bytes stop and what the frame in
 * progress needed (a cut file's last bytes are not a footer, so the
 * footer's own fields say nothing useful).  Otherwise rc and its message
 * stand. */
static int v2_footer_fail(v2_t *v, uint64_t off, int rc) {
  wksp_err_saved_t saved;
  wksp_err_save(&saved, rc);
  uint8_t *buf = malloc(WKSP_FRAME_CHUNK_MAX);
  int volumes = 0, walk = buf ? WKSP_SUCCESS : WKSP_ERR_NOMEM;
  while (!walk && !volumes) {
    walk = wksp_frame_reader_seek(v->r, off);
    if (!walk) walk = walk_frame(v, buf, &volumes);
    off = wksp_frame_reader_offset(v->r);
  }
  free(buf);
  uint64_t at, end;
  if (walk && wksp_private_frame_reader_short(v->r, &at, &end))
    return rd_fail(v, walk, "frames");
  if (!walk && off + CHECKPT_FTR_SZ > v->sz)
    return wksp_private_checkpt_truncated(v->what, v->sz, off + CHECKPT_FTR_SZ);
  return wksp_err_resume(&saved);
}

/* Footer counts within the limits of checkpt_private.h (the walk then checks that
 * they are the real ones). */
static int v2_limits(const v2_t *v) {
  const checkpt_ftr_t *f = &v->s->ftr;
  uint64_t pmax = v->s->hdr.part_max, fmax = checkpt_frames_max(pmax);
  if (f->alloc_cnt <= pmax && f->cgroup_cnt <= fmax && f->volume_cnt <= fmax) return WKSP_SUCCESS;
  return wksp_err(WKSP_ERR_CORRUPT, 0,
                  "%s: footer counts %" PRIu64 " allocations, %" PRIu64 " cgroup frames, %" PRIu64
                  " volumes: at most "
                  "part_max %" PRIu64 " allocations and %" PRIu64 " frames or volumes for this source",
                  v->what, f->alloc_cnt, f->cgroup_cnt, f->volume_cnt, pmax, fmax);
}

static int v2_scan(checkpt_scan_t *s, const checkpt_input_t *in, const uint8_t head[CHECKPT_HDR_SZ]) {
  v2_t v = {.s = s, .in = in, .sz = in->sz, .what = in->label};
  cg_t *cg = NULL;
  uint64_t n = 0, info_end = 0;
  uint8_t ftr[CHECKPT_FTR_SZ];
  int rc = wksp_private_checkpt_input_reader(in, &v.r);
  if (!rc) rc = v2_head(&v, head, &info_end);
  if (rc) goto out;
  if (v.sz - info_end < CHECKPT_FTR_SZ) {
    rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: no room for a footer after the info frame", v.what);
  } else {
    rc = wksp_private_checkpt_input_read(in, ftr, CHECKPT_FTR_SZ, v.sz - CHECKPT_FTR_SZ);
    if (rc) goto out;
    wksp_private_checkpt_ftr_decode(&s->ftr, ftr);
    rc = wksp_private_checkpt_ftr_check(&s->ftr, &s->hdr, v.sz, v.what);
  }
  if (rc) rc = v2_footer_fail(&v, info_end, rc);
  if (!rc) rc = v2_limits(&v);
  if (!rc) rc = v2_volumes(&v, info_end, &cg, &n);
  if (!rc) rc = v2_cgroups(&v, cg, n);
  if (rc) goto out;
  s->info.file_sz = v.sz;
  s->info.alloc_cnt = s->ftr.alloc_cnt;
  s->info.cgroup_cnt = n;
  s->info.volume_cnt = s->ftr.volume_cnt;
  rc = wksp_private_checkpt_info_parts(s, v.what);
out:
  free(cg);
  wksp_frame_reader_fini(v.r);
  return rc;
}

int wksp_private_checkpt_scan(checkpt_scan_t *s, const checkpt_input_t *in) {
  memset(s, 0, sizeof *s);
  uint8_t head[CHECKPT_PREVIEW_MAX];
  uint64_t n = in->sz < sizeof head ? in->sz : sizeof head, max_sz = 0;
  wksp_preview_t pv;
  int rc = wksp_private_checkpt_input_read(in, head, n, 0);
  if (!rc) rc = wksp_private_checkpt_head(head, (size_t)n, in->label, &pv, &max_sz);
  /* (a v1 checkpoint ends at its terminator: what follows is not read) */
  if (!rc && pv.style == 2 && in->sz > max_sz)
    rc = wksp_err(WKSP_ERR_CORRUPT, 0,
                  "%s: longer than a checkpoint of this geometry can be (%" PRIu64 " bytes)", in->label,
                  max_sz);
  if (!rc) rc = pv.style == 2 ? v2_scan(s, in, head) : wksp_private_checkpt_v1_scan(s, in);
  if (rc) wksp_private_checkpt_scan_fini(s);
  else wksp_private_checkpt_seal_read(&s->seal, s->info.app_id, s->info.binfo, strlen(s->info.binfo));
  return wksp_private_checkpt_input_changed(in, rc);
}
