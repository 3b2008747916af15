/* Incremental checkpoints (docs/FORMAT.md 13): what delta_format.c,
 * delta_write.c, index.c and chain.c share.  A delta file and an index file have
 * one layout (section 13.2) and one parser. */
#ifndef WKSP_CHECKPT_DELTA_PRIVATE_H
#define WKSP_CHECKPT_DELTA_PRIVATE_H

#include <stdint.h>

#include "checkpt_private.h"

#define DELTA_MAGIC 0x41544c4450534b57ull /* "WKSPDLTA" on disk */
#define INDEX_MAGIC 0x58444e4950534b57ull /* "WKSPINDX" on disk */
#define DELTA_VERSION 1u
#define DELTA_HDR_SZ 144
#define DELTA_FTR_SZ 128
#define DELTA_PIECE_LG 16u
#define DELTA_PIECE (1ull << DELTA_PIECE_LG) /* = CHECKPT_DIGEST_PIECE */
#define DELTA_HINT_MAX 4095ull
#define DELTA_UINFO_MAX 16383ull
#define DELTA_FLAG_VERIFIED 1u
#define DELTA_INDEX_SUFFIX ".wkspidx"

/* 1 for the first 8 bytes of a delta or index file. */
static inline int delta_magic_any(uint64_t m) { return m == DELTA_MAGIC || m == INDEX_MAGIC; }
/* The first 8 bytes of a random-access input as a u64 (0 when shorter). */
int wksp_private_delta_magic_read(const checkpt_input_t *in, uint64_t *magic);

typedef struct {
  uint64_t magic;
  uint32_t version, piece_style, piece_lg, flags;
  char name[CHECKPT_NAME_MAX];
  uint32_t seed;
  uint64_t part_max, data_max;
  int64_t wallclock;
  uint64_t base_digest, alloc_cnt, piece_cnt, hint_sz, uinfo_sz;
  uint32_t reserved0;
  uint64_t reserved1;
} delta_hdr_t;

typedef struct {
  uint64_t digest, changed_cnt, changed_sz;
  uint64_t table_off, pieces_off, index_off, bitmap_off, ftab_off, file_sz;
  uint64_t alloc_cnt, piece_cnt, base_digest;
  uint64_t meta_digest, piece_digest, footer_check, unmagic;
} delta_ftr_t;

/* The header (delta_head.c). */
void wksp_private_delta_hdr_encode(uint8_t out[DELTA_HDR_SZ], const delta_hdr_t *h);
void wksp_private_delta_hdr_decode(delta_hdr_t *h, const uint8_t in[DELTA_HDR_SZ]);
/* Rule 2's header fields, and a file of file_sz bytes (0: not known yet)
 * not longer than the header allows: CORRUPT or UNSUP naming what. */
int wksp_private_delta_hdr_check(const delta_hdr_t *h, uint64_t file_sz, const char *what);
/* Fills footer_check from the other bytes (encoding computes it). */
void wksp_private_delta_ftr_encode(uint8_t out[DELTA_FTR_SZ], delta_ftr_t *f);
void wksp_private_delta_ftr_decode(delta_ftr_t *f, const uint8_t in[DELTA_FTR_SZ]);
/* XXH3 of a frame's bytes seeded with its offset (13.2, integrity). */
uint64_t wksp_private_delta_frame_hash(const void *b, uint64_t n, uint64_t off);
/* (delta_head.c) The first n bytes p of a delta or index read from a stream: its header
 * checked (rule 2's header fields; CORRUPT, UNSUP naming what) and *max_sz
 * the most bytes a file with that header can have (rule 1): what a spool
 * of it may hold. */
int wksp_private_delta_head(const uint8_t *p, size_t n, const char *what, uint64_t *max_sz);
/* The most bytes a file with these counts can have (rule 1; saturated). */
uint64_t wksp_private_delta_max_sz(uint64_t alloc_cnt, uint64_t piece_cnt);
/* Bytes of a piece frame of n bytes: RAW exactly n, LZ4 in [4, 3 + bound(n)]. */
static inline uint64_t delta_bitmap_words(uint64_t piece_cnt) { return (piece_cnt + 63) / 64; }
static inline uint64_t delta_pieces_of(uint64_t sz) { return (sz + DELTA_PIECE - 1) / DELTA_PIECE; }

/* ---- the pieces of a state: allocations ascending, pieces within each ----
 * pstart[k] = piece number of allocation k's first piece, pstart[cnt] =
 * the piece count. */
int wksp_private_delta_pstart(const wksp_part_t *parts, uint64_t cnt, uint64_t **pstart);
/* The allocation of piece i (binary search). */
uint64_t wksp_private_delta_alloc_of(const uint64_t *pstart, uint64_t cnt, uint64_t i);
/* Piece i's address and length (k: its allocation, found by binary search). */
void wksp_private_delta_piece_at(const wksp_part_t *parts, const uint64_t *pstart, uint64_t cnt,
                                 uint64_t i, uint64_t *a, uint64_t *n);

/* Pieces visited in ascending order: one binary search for the first, then
 * a step per allocation boundary (an unchanged delta visits every piece of
 * the workspace; a search per piece cost it 2% of its time). */
typedef struct {
  const wksp_part_t *parts;
  const uint64_t *pstart;
  uint64_t k; /* allocation of the last piece visited */
} delta_cursor_t;

static inline delta_cursor_t delta_cursor(const wksp_part_t *parts, const uint64_t *pstart, uint64_t cnt,
                                          uint64_t i0) {
  return (delta_cursor_t){parts, pstart, wksp_private_delta_alloc_of(pstart, cnt, i0)};
}

/* Piece i (no lower than the last visited, below the piece count). */
static inline void delta_cursor_at(delta_cursor_t *c, uint64_t i, uint64_t *a, uint64_t *n) {
  while (c->pstart[c->k + 1] <= i) c->k++;
  const wksp_part_t *p = &c->parts[c->k];
  *a = p->gaddr_lo + (i - c->pstart[c->k]) * DELTA_PIECE;
  *n = p->gaddr_hi - *a < DELTA_PIECE ? p->gaddr_hi - *a : DELTA_PIECE;
}
/* For every piece of (parts, pstart) the number of the piece of the other
 * state (oparts, opstart) with the same address and length, UINT64_MAX
 * for none: one merge walk (both ascending).  *out malloc'd. */
int wksp_private_delta_match(const wksp_part_t *parts, const uint64_t *pstart, uint64_t cnt,
                             const wksp_part_t *oparts, const uint64_t *opstart, uint64_t ocnt,
                             uint64_t **out);

/* ---- a delta or index file, its metadata read and checked (rules 1-4) ---- */
typedef struct {
  int kind;             /* WKSP_FILE_DELTA or WKSP_FILE_INDEX */
  delta_hdr_t h;
  delta_ftr_t f;
  char *hint, *uinfo;   /* NUL-terminated copies */
  wksp_part_t *parts;   /* h.alloc_cnt, ascending */
  uint64_t *pstart;     /* alloc_cnt + 1 */
  uint64_t *hash;       /* piece_cnt: the index */
  uint64_t *bits;       /* the bitmap */
  uint64_t *ftab;       /* changed_cnt + 1 */
  uint64_t *changed;    /* changed_cnt: piece numbers of the piece frames, in order */
  uint64_t data_sz;     /* bytes of the allocations */
} delta_file_t;

/* Reads and checks everything but the piece frames' contents (rules 1-4 of
 * docs/FORMAT.md 13.2): CORRUPT naming the field, UNSUP for another
 * version or piece size, FAIL for a read error, NOMEM; the file freed. */
int wksp_private_delta_open(delta_file_t *df, const checkpt_input_t *in);
void wksp_private_delta_fini(delta_file_t *df);
/* Decodes piece frame j into buf (its piece's length): the frame must
 * decode to exactly that and hash to its index entry.  CORRUPT. */
int wksp_private_delta_piece_read(const delta_file_t *df, const checkpt_input_t *in, uint64_t j,
                                  uint8_t *buf, uint8_t *scratch);
/* Rule 5: piece_digest over the piece frames, then each piece decoded and
 * checked against its hash, over threads.  CORRUPT, FAIL, NOMEM. */
int wksp_private_delta_pieces_check(const delta_file_t *df, const checkpt_input_t *in,
                                    uint32_t threads);
/* The content digest the table and index make (rule 4's check). */
uint64_t wksp_private_delta_content_digest(const wksp_part_t *parts, uint64_t cnt,
                                           const uint64_t *hash, uint64_t piece_cnt);

/* ---- writing one (delta_out.c) -----------------------------------------------
 * Everything of the file but its piece frames, in the writer's terms. */
typedef struct {
  int fd;
  const char *label;
  uint64_t pos;           /* bytes written so far (the next frame's offset) */
  uint64_t meta_sum, piece_sum;
} delta_out_t;

/* Writes n bytes as one RAW frame, its frame hash added to the sum named
 * (the footer is under none).  FAIL naming the label. */
enum { DELTA_SUM_META, DELTA_SUM_PIECE, DELTA_SUM_NONE };
int wksp_private_delta_emit(delta_out_t *o, const void *b, uint64_t n, int sum);
/* Header and text frame (hint, uinfo), then the table. */
int wksp_private_delta_emit_head(delta_out_t *o, const delta_hdr_t *h, const char *hint,
                                 const char *uinfo, const wksp_part_t *parts);
/* Index, bitmap, frame table (ftab: changed_cnt entries; the index's
 * offset is appended) and footer. */
int wksp_private_delta_emit_tail(delta_out_t *o, const delta_hdr_t *h, const uint64_t *hash,
                                 const uint64_t *bits, const uint64_t *ftab, uint64_t changed_cnt,
                                 uint64_t changed_sz, uint64_t digest, uint64_t pieces_off,
                                 uint64_t table_off);

/* ---- the base of a delta (index.c) --------------------------------------------- */
typedef struct {
  int from;               /* WKSP_BASE_FROM_* */
  char note[256];
  delta_hdr_t h;          /* name, seed, part_max, data_max, wallclock, alloc_cnt, piece_cnt */
  uint64_t digest;
  wksp_part_t *parts;
  uint64_t cnt, *pstart, *hash;
  uint64_t dev, ino;      /* the file, to refuse writing a delta over its own base */
} delta_base_t;

/* Loads what a delta's writer needs of the file at path (docs/FORMAT.md
 * 13.3): a delta's own table and index, else a sealed checkpoint's sidecar
 * index, else the checkpoint decoded once (the note says why).  decode:
 * skip the sidecar.  Errors as wksp_checkpt_delta's base errors. */
int wksp_private_delta_base_load(delta_base_t *b, const char *path, uint32_t threads, int decode);
void wksp_private_delta_base_fini(delta_base_t *b);
/* The hashes of every piece of a scanned sealed checkpoint, decoded; their
 * sum with the records must be its seal digest (CORRUPT). */
int wksp_private_delta_scan_hashes(const checkpt_input_t *in, const checkpt_scan_t *s,
                                   uint32_t threads, uint64_t **pstart, uint64_t **hash);
/* Writes path + ".wkspidx" for a state (name, seed, geometry, wallclock,
 * table, hashes, digest) and publishes it (replacing only an index file). */
int wksp_private_delta_index_write(const char *path, const delta_hdr_t *h, const wksp_part_t *parts,
                                   const uint64_t *hash, uint64_t digest, uint32_t mode);
/* opts.index of wksp_checkpt (lock held, the checkpoint at path verified,
 * not yet committed): the sidecar of w's table parts (the file's, as the
 * verify found) with hash, the hashes of the file's pieces read back by
 * the verify, and its content digest, written and published.
 * index_unlink: the sidecar removed again (best effort), when the
 * checkpoint's own commit fails. */
int wksp_private_delta_index_of_wksp(wksp_t *w, const wksp_part_t *parts, uint64_t cnt, const uint64_t *hash,
                                     uint64_t digest, int64_t wallclock, const char *path, uint32_t mode);
void wksp_private_delta_index_unlink(const char *path);

/* ---- a chain BASE DELTA... opened and checked (chain.c) -------------------------- */
typedef struct {
  checkpt_input_t in;
  delta_file_t df;
  int opened;
} delta_link_t;

typedef struct {
  const char *const *paths;
  size_t cnt;
  uint32_t threads;
  int verify_first;
  checkpt_input_t bin; /* the base */
  checkpt_scan_t bs;
  int bin_open, bs_open;
  uint64_t *bpstart, *bhash; /* bhash: with verify_first only */
  delta_link_t *d;           /* cnt - 1 deltas */
} delta_chain_t;

/* The argument checks every chain call makes (INVAL naming fn). */
int wksp_private_chain_args(const char *fn, const void *w, const char *const *paths, size_t cnt);
/* Steps 1-4 of docs/FORMAT.md 13.4, nothing locked (cnt >= 1): the base's
 * structure and seal (with verify_first its pieces hashed too), each
 * delta's metadata and pieces, every base digest and every link.  Errors
 * as wksp_restore_chain's before the lock; c is then freed. */
int wksp_private_chain_open(delta_chain_t *c, const char *const *paths, size_t cnt, uint32_t threads,
                            int verify_first);
void wksp_private_chain_fini(delta_chain_t *c);
/* What a workspace holding the chain's final state is, for a checkpoint
 * of it to record (fold.c): BASE's geometry (every member has it), the
 * name and seed the last member records (the workspace that state was
 * written from) and BASE's frame style. */
typedef struct {
  char name[CHECKPT_NAME_MAX]; /* NUL-terminated (checked when the member was read) */
  uint32_t seed;
  uint64_t part_max, data_max;
  int frame_style;
} chain_final_t;
void wksp_private_chain_final(const delta_chain_t *c, chain_final_t *f);
/* The rest of wksp_restore_chain for an opened chain (cnt >= 1): locks w,
 * applies the chain (o as wksp_restore_chain's opts, seed the records'),
 * unlocks; w's state after a failure as there. */
int wksp_private_chain_apply(const delta_chain_t *c, wksp_t *w, const wksp_restore_opts_t *o);

#endif
