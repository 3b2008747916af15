/* src/cli/map.h: the picture `wksp map` draws, as data.
 *
 * The data region [lo, hi) is cut into cells of cell_sz bytes each (the
 * last one may be shorter).  A cell is summarised by
 *   used  the allocated bytes in it;
 *   tag   the tag with the most allocated bytes in it (on a tie, the one
 *         whose bytes come first in the cell); 0 when used is 0;
 *   sym   how it is drawn: the legend index of tag (0 = the tag with the
 *         most bytes in the whole region, 1 the next, ... up to
 *         MAP_LEGEND_MAX - 1), MAP_SYM_OTHER for a tag outside the legend,
 *         MAP_SYM_FREE for a cell without allocated bytes.
 * and its fill, map_eighths(): 8 for a fully allocated cell, 1..7 for a
 * partly free one, 0 for a free one.
 *
 * Pure: ranges in, cells out (no I/O, no library state), so that a unit
 * test checks it exactly (tests/cli/test_map.c); cmd_map.c draws it. */
#ifndef WKSP_CLI_MAP_H
#define WKSP_CLI_MAP_H

#include <stddef.h>
#include <stdint.h>

#include <wksp/wksp.h>

enum {
  MAP_LEGEND_MAX = 10,             /* tags with a symbol of their own */
  MAP_SYM_OTHER = MAP_LEGEND_MAX,  /* any other tag */
  MAP_SYM_FREE = MAP_LEGEND_MAX + 1
};

typedef struct {
  uint64_t lo, hi; /* the cell's addresses [lo, hi) */
  uint64_t used;   /* allocated bytes in it */
  uint64_t tag;    /* the tag with the most of them (0: none) */
  int sym;         /* legend index, MAP_SYM_OTHER or MAP_SYM_FREE */
} map_cell_t;

typedef struct {
  uint64_t tag; /* a tag */
  uint64_t sz;  /* its bytes */
  uint64_t cnt; /* its allocations */
} map_tag_t;

typedef struct {
  uint64_t lo, hi;       /* the data region */
  uint64_t cell_sz;      /* bytes per cell */
  size_t cell_cnt;
  map_cell_t *cells;     /* cell_cnt cells, ascending */
  map_tag_t *tags;       /* every tag, most bytes first (ties: smaller tag first) */
  size_t tag_cnt;        /* the first min(tag_cnt, MAP_LEGEND_MAX) are the legend */
  uint64_t used_sz, used_cnt;           /* all allocations */
  uint64_t free_sz, free_cnt, free_max; /* free ranges: the gaps between allocations */
} map_t;

/* Builds the picture of a data region [lo, hi) holding the allocations
 * parts[0..cnt) (ascending, non-overlapping, inside [lo, hi), each with
 * gaddr_lo < gaddr_hi; entries with tag 0, free space, are skipped) in at
 * most cells_max (>= 1) cells: cell_sz = ceil((hi - lo) / cells_max), so
 * cell_cnt = ceil((hi - lo) / cell_sz).  Returns 0, EINVAL (lo >= hi,
 * cells_max 0, or parts not as described: m is then empty) or ENOMEM.
 * On success free m with map_free. */
int map_build(map_t *m, const wksp_part_t *parts, size_t cnt, uint64_t lo, uint64_t hi, size_t cells_max);
void map_free(map_t *m);

/* The fill of a cell in eighths: 0 free, 8 full, else 1..7 (rounded up, so
 * any allocated byte shows; never 8 while a byte is free). */
int map_eighths(const map_cell_t *c);

#endif
