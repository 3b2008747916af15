/* Byte layouts of the checkpoint format (docs/FORMAT.md sections 1, 3, 5):
 * encode / decode of the v2 header, info, command and footer records, their
 * validation, the 64-bit hash, the cgroup assignment of the reference writer
 * and the v1 SVW integer codec.  Pure functions on bytes: no I/O, no
 * workspace, no locking, so everything here is usable from any thread and
 * from the fuzzer. */
#ifndef WKSP_CHECKPT_FORMAT_PRIVATE_H
#define WKSP_CHECKPT_FORMAT_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shmem/name_private.h"
#include <wksp/wksp.h>

#define CHECKPT_MAGIC 0xF17EDA2C3731C591ull
#define CHECKPT_HDR_SZ 80
#define CHECKPT_INFO_SZ 144
#define CHECKPT_CMD_SZ 24
#define CHECKPT_FTR_SZ 120
#define CHECKPT_CGROUP_MAX 1024ull
#define CHECKPT_CGROUP_ALLOCS 32ull /* target allocations per cgroup frame */
#define CHECKPT_LOG_NAME_MAX 40ull  /* app/thread/host/cpu/group/user incl. NUL */
#define CHECKPT_PATH_MAX 4096ull
#define CHECKPT_INFO_STR_MAX 16384ull /* binfo / uinfo incl. NUL */
#define CHECKPT_INFO_BLOB_MAX 65536ull
#define CHECKPT_NAME_MAX 40

/* ---- little-endian loads and stores (the file is LE on every host) ---- */

/* One unaligned load or store (memcpy) and a swap on big-endian hosts
 * only: the byte loops they replace were not merged by gcc -O2 and cost
 * 2 ns a word, 30 us for a delta's index of 15k piece hashes. */
static inline uint64_t checkpt_ld64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}
static inline uint32_t checkpt_ld32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  return v;
}
static inline void checkpt_st64(uint8_t *p, uint64_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  memcpy(p, &v, sizeof v);
}
static inline void checkpt_st32(uint8_t *p, uint32_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  memcpy(p, &v, sizeof v);
}

/* ---- hash (docs/FORMAT.md 1.1) ------------------------------------------- */

static inline uint64_t checkpt_hash64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

/* ---- records --------------------------------------------------------------- */

typedef struct {
  uint64_t magic;
  int32_t style;       /* 2 on disk */
  int32_t frame_style; /* frame_style_compressed: 1 RAW, 2 LZ4 */
  uint32_t reserved;
  char name[CHECKPT_NAME_MAX]; /* all 40 bytes as on disk */
  uint32_t seed;
  uint64_t part_max;
  uint64_t data_max;
} checkpt_hdr_t;

typedef struct {
  uint64_t mode;
  int64_t wallclock;
  uint64_t app_id, thread_id, host_id, cpu_id, group_id, tid, user_id;
  uint64_t sz[9]; /* app, thread, host, cpu, group, user, path, binfo, uinfo (incl. NUL) */
} checkpt_info_t;

enum {
  CHECKPT_S_APP,
  CHECKPT_S_THREAD,
  CHECKPT_S_HOST,
  CHECKPT_S_CPU,
  CHECKPT_S_GROUP,
  CHECKPT_S_USER,
  CHECKPT_S_PATH,
  CHECKPT_S_BINFO,
  CHECKPT_S_UINFO,
  CHECKPT_S_CNT
};

typedef struct {
  uint64_t tag, a, b;
} checkpt_cmd_t;

typedef struct {
  uint64_t alloc_cnt, cgroup_cnt, volume_cnt, frame_off, checkpt_sz;
  uint64_t data_max, part_max;
  uint32_t seed;
  char name[CHECKPT_NAME_MAX];
  uint32_t reserved;
  int32_t frame_style, style;
  uint64_t unmagic;
} checkpt_ftr_t;

void wksp_private_checkpt_hdr_encode(uint8_t out[CHECKPT_HDR_SZ], const checkpt_hdr_t *h);
void wksp_private_checkpt_hdr_decode(checkpt_hdr_t *h, const uint8_t in[CHECKPT_HDR_SZ]);
void wksp_private_checkpt_info_encode(uint8_t out[CHECKPT_INFO_SZ], const checkpt_info_t *i);
void wksp_private_checkpt_info_decode(checkpt_info_t *i, const uint8_t in[CHECKPT_INFO_SZ]);
void wksp_private_checkpt_cmd_encode(uint8_t out[CHECKPT_CMD_SZ], uint64_t tag, uint64_t a, uint64_t b);
void wksp_private_checkpt_cmd_decode(checkpt_cmd_t *c, const uint8_t in[CHECKPT_CMD_SZ]);
void wksp_private_checkpt_ftr_encode(uint8_t out[CHECKPT_FTR_SZ], const checkpt_ftr_t *f);
void wksp_private_checkpt_ftr_decode(checkpt_ftr_t *f, const uint8_t in[CHECKPT_FTR_SZ]);

/* Command kinds (docs/FORMAT.md 3.4). */
static inline int checkpt_cmd_is_meta(const checkpt_cmd_t *c) { return c->tag != 0; }
static inline int checkpt_cmd_is_data(const checkpt_cmd_t *c) {
  return !c->tag && c->a == UINT64_MAX && c->b == UINT64_MAX;
}
static inline int checkpt_cmd_is_appendix(const checkpt_cmd_t *c) {
  return !c->tag && c->a != UINT64_MAX && c->b != UINT64_MAX;
}
static inline int checkpt_cmd_is_volumes(const checkpt_cmd_t *c) {
  return !c->tag && c->a == UINT64_MAX && c->b != UINT64_MAX;
}

/* Workspace geometry of a checkpoint's source: 1 <= part_max <= 2^32-1,
 * data_max >= 1, and the footprint does not overflow (docs/FORMAT.md 3.2). */
int wksp_private_checkpt_sizes_valid(uint64_t part_max, uint64_t data_max);
static inline uint64_t checkpt_gaddr_lo(uint64_t part_max) { return 128 + 64 * part_max; }

/* Header checks of docs/FORMAT.md 4.2 (magic, style 2, frame style supported,
 * reserved 0, name, sizes).  WKSP_SUCCESS or CORRUPT with a message naming
 * the field (prefixed by `what`, e.g. the path). */
int wksp_private_checkpt_hdr_check(const checkpt_hdr_t *h, const char *what);

/* Info checks: the nine sizes in range and their sum <= 64 KiB. *blob_sz
 * gets the sum.  CORRUPT naming the string. */
int wksp_private_checkpt_info_check(const checkpt_info_t *i, uint64_t *blob_sz, const char *what);

/* Checks the strings of the info blob (each NUL-terminated exactly at its
 * size, no embedded NUL).  CORRUPT. */
int wksp_private_checkpt_info_blob_check(const checkpt_info_t *i, const uint8_t *blob, const char *what);

/* Footer against header (every copied field, unmagic) and the expected
 * checkpoint size.  CORRUPT naming the first field that differs. */
int wksp_private_checkpt_ftr_check(const checkpt_ftr_t *f, const checkpt_hdr_t *h, uint64_t checkpt_sz,
                                const char *what);

/* Meta command check: tag > 0 and src_lo <= a < b <= src_hi (the source
 * data region of the header).  CORRUPT naming the command's file offset. */
int wksp_private_checkpt_meta_check(const checkpt_cmd_t *c, uint64_t src_lo, uint64_t src_hi,
                                 uint64_t off, const char *what);

/* ---- cgroup assignment (docs/FORMAT.md 3.9) ------------------------------ */

/* Number of cgroup frames for alloc_cnt allocations. */
static inline uint64_t checkpt_cgroup_cnt(uint64_t alloc_cnt) {
  uint64_t c = (alloc_cnt + CHECKPT_CGROUP_ALLOCS - 1) / CHECKPT_CGROUP_ALLOCS;
  return c < CHECKPT_CGROUP_MAX ? c : CHECKPT_CGROUP_MAX;
}

/* Assigns parts[0..cnt) (ascending gaddr_lo) to C = checkpt_cgroup_cnt(cnt)
 * cgroups exactly as the reference writer.  Output: cg_cnt[0..C) allocations
 * per cgroup, cg_start[0..C] prefix sums, and order[0..cnt) = indices into
 * parts, grouped by cgroup (cgroup g is order[cg_start[g] .. cg_start[g+1]))
 * and ascending inside each group.  Arrays are caller-allocated (C+1 /
 * cnt entries). */
void wksp_private_checkpt_cgroup_assign(const wksp_part_t *parts, uint64_t cnt, uint64_t *cg_cnt,
                                     uint64_t *cg_start, uint64_t *order);

/* ---- v1 SVW integers (docs/FORMAT.md 5.1) -------------------------------- */

#define CHECKPT_SVW_MAX 9

/* Encodes x at the smallest width; returns the byte count (1..9). */
size_t wksp_private_checkpt_svw_encode(uint8_t out[CHECKPT_SVW_MAX], uint64_t x);

/* Width announced by the first byte (1, 2, 3, 4, 5, 8 or 9). */
size_t wksp_private_checkpt_svw_width(uint8_t b0);

/* Decodes one integer from [p, p+avail); returns the bytes used, or 0 if
 * fewer than the announced width are available. */
size_t wksp_private_checkpt_svw_decode(const uint8_t *p, size_t avail, uint64_t *x);

#endif
